"""Clock steps, in-process with an injected wall clock: the real timer (APScheduler behind our
trigger and executor), the real runner and a real ledger; never the machine's clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apscheduler.schedulers.base
import pytest

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.timing import Timing
from reconciler.engine.catchup import gap
from reconciler.engine.executor import SlotExecutor
from reconciler.engine.runner import Runner
from reconciler.engine.timer import Timer, slot_job
from reconciler.engine.trigger import SlotTrigger, latest_slot
from reconciler.ledger.base import RunRecord
from reconciler.ledger.sqlite import SqliteLedger
from tests.harness import wait_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def schedule(text: str) -> Schedule:
    result = Loader().load_bytes("s.yaml", text.encode(), T0)
    assert not result.problems, result.problems
    return result.schedules[0]


def run_times(trigger: SlotTrigger, first: datetime, now: datetime) -> list[datetime]:
    """What APScheduler's Job._get_run_times lists at one wake-up."""
    out: list[datetime] = []
    fire: datetime | None = first
    while fire is not None and fire <= now and len(out) < 100_000:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, now)
    return out


# ---- the trigger: a step of days lists two fire times, not one per slot -----------------------------


def test_after_a_forward_step_the_trigger_lists_the_first_and_the_newest_due_slot_only() -> None:
    trigger = SlotTrigger(schedule("name: a\nschedule: {every: 1s}\nrun: {command: [x]}\n").timing)
    first = trigger.get_next_fire_time(None, T0)
    assert first == T0
    now = T0 + timedelta(days=1, milliseconds=500)
    assert run_times(trigger, first, now) == [T0, T0 + timedelta(days=1)]
    assert trigger.get_next_fire_time(T0 + timedelta(days=1), now) == T0 + timedelta(days=1, seconds=1)


def test_a_step_of_years_is_handled_in_a_few_calls() -> None:
    trigger = SlotTrigger(schedule("name: a\nschedule: {cron: '*/5 * * * *'}\nrun: {command: [x]}\n").timing)
    started = time.perf_counter()
    times = run_times(trigger, T0, T0 + timedelta(days=3 * 365, minutes=7))
    assert times == [T0, T0 + timedelta(days=3 * 365, minutes=5)]
    assert time.perf_counter() - started < 1.0


def test_a_jittered_schedule_maps_both_listed_fire_times_back_to_their_slots() -> None:
    trigger = SlotTrigger(schedule("name: j\nschedule: {every: 10s, jitter: 9s}\nrun: {command: [x]}\n").timing)
    first = trigger.get_next_fire_time(None, T0 - S)
    assert first is not None
    assert trigger.slot_for(first) == T0
    now = T0 + timedelta(minutes=10, seconds=5)
    times = run_times(trigger, first, now)
    assert len(times) == 2
    assert [trigger.slot_for(t) for t in times] == [T0, T0 + timedelta(minutes=10)]
    assert times[-1] <= now


def test_latest_slot_finds_the_newest_slot_in_a_range() -> None:
    timing = schedule("name: a\nschedule: {cron: '0 2 * * *'}\nrun: {command: [x]}\n").timing
    assert latest_slot(timing, T0, T0 + timedelta(days=400)) == datetime(2027, 4, 5, 2, 0, tzinfo=UTC)
    assert latest_slot(timing, T0, T0 + timedelta(hours=13)) is None  # none in (12:00, 01:00 next day]
    ended = Timing(name="e", tz=timing.tz, every=timedelta(minutes=1), end=T0 + timedelta(minutes=3))
    assert latest_slot(ended, T0 - timedelta(days=1), T0 + timedelta(days=30)) == T0 + timedelta(minutes=3)


def test_a_capped_gap_still_names_its_true_latest_slot() -> None:
    timing = Timing(name="a", tz=schedule("name: a\nschedule: {every: 1s}\nrun: {command: [x]}\n").timing.tz,
                    every=S)
    missed = gap(timing, T0, T0 + timedelta(hours=1), limit=10)
    assert missed is not None
    assert (missed.count, missed.capped, missed.first) == (10, True, T0 + S)
    assert (missed.before_latest, missed.latest) == (T0 + timedelta(minutes=59, seconds=58),
                                                     T0 + timedelta(minutes=59, seconds=59))


# ---- the executor: behind, or merely two jittered fire times close together -------------------------


class Job:
    def __init__(self, trigger: SlotTrigger) -> None:
        self.id, self.trigger, self.max_instances = "a", trigger, 1_000_000


class Scheduler:
    def _create_lock(self) -> threading.RLock:
        return threading.RLock()


def test_the_executor_hands_a_late_burst_to_catch_up_and_dispatches_close_fire_times() -> None:
    trigger = SlotTrigger(schedule("name: a\nschedule: {every: 1s}\nrun: {command: [x]}\n").timing)
    dispatched: list[tuple[str, datetime, datetime]] = []
    behind: list[tuple[str, datetime, datetime]] = []
    now = [T0 + timedelta(seconds=30)]
    executor = SlotExecutor(lambda *a: dispatched.append(a), lambda *a: behind.append(a), lambda: now[0])
    executor.start(Scheduler(), "default")
    executor.submit_job(Job(trigger), [T0, T0 + timedelta(seconds=30)])
    assert (dispatched, behind) == ([], [("a", T0, T0 + timedelta(seconds=30))])
    now[0] = T0 + timedelta(milliseconds=20)  # two fire times due within milliseconds: not behind
    executor.submit_job(Job(trigger), [T0, T0 + timedelta(milliseconds=10)])
    assert [d[1] for d in dispatched] == [T0, T0 + timedelta(milliseconds=10)]
    assert len(behind) == 1


# ---- the whole timer, runner and ledger under a stepped clock --------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


class Rig:
    def __init__(self, tmp_path: Path, clock: Clock, s: Schedule) -> None:
        self.clock, self.name = clock, s.name
        self.ledger = SqliteLedger(tmp_path / "l.db")
        self.runner = Runner(self.ledger, log=Logs(), clock=clock, environ={"PATH": "/usr/bin:/bin"})
        self.runner.update({s.name: s}, "rev-1")
        self.dispatched: list[datetime] = []
        self.fired = threading.Event()

        def dispatch(name: str, slot: datetime, fire_time: datetime, **kw: Any) -> None:
            self.dispatched.append(slot)
            self.fired.set()
            self.runner.dispatch(name, slot, fire_time, **kw)

        self.timer = Timer(dispatch, self.runner.behind, clock)
        self.timer.start(paused=True)
        trigger = SlotTrigger(s.timing)
        self.timer.put([slot_job(self.timer, s.name, trigger, trigger.get_next_fire_time(None, clock()))])
        self.timer.resume()

    def step_to(self, t: datetime) -> None:
        self.fired.clear()
        self.clock.now = t
        self.timer.wakeup()

    def runs(self) -> list[RunRecord]:
        return sorted(self.ledger.runs(self.name, limit=1000), key=lambda r: r.slot)

    def settled(self, count: int) -> list[RunRecord]:
        wait_for(lambda: len(self.runs()) == count and all(r.status != "running" for r in self.runs()),
                 timeout=10, what=f"{count} rows, none running")
        return self.runs()

    def close(self) -> None:
        self.timer.shutdown(wait=False)
        self.runner.shutdown(5)
        self.ledger.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The wall clock of the runner, the executor and APScheduler's loop, all at once."""
    fake = Clock(T0 + timedelta(milliseconds=500))

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return fake.now.astimezone(tz) if tz is not None else fake.now

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", SteppedDatetime)
    return fake


@pytest.fixture
def rig(tmp_path: Path, clock: Clock, request: pytest.FixtureRequest) -> Iterator[Rig]:
    policy = getattr(request, "param", "none")
    r = Rig(tmp_path, clock, schedule(f"name: tick\nschedule: {{every: 1s}}\nrun: {{command: [/bin/true]}}\n"
                                      f"policy: {{catchup: {policy}}}\n"))
    yield r
    r.close()


def slots(rows: list[RunRecord]) -> list[tuple[int, str, str]]:
    return [(int((r.slot - T0).total_seconds()), r.cause, r.status) for r in rows]


def test_a_forward_step_with_catchup_none_writes_one_summary_row_and_runs_nothing_of_the_gap(rig: Rig) -> None:
    rig.step_to(T0 + S)
    rig.settled(1)
    rig.step_to(T0 + timedelta(seconds=31, milliseconds=200))  # +30 s: slots 2 .. 31 passed unseen
    rows = rig.settled(2)
    assert slots(rows) == [(1, "schedule", "succeeded"), (31, "catchup", "missed")]
    assert (rows[1].error or "").startswith("30 slot(s) missed while the timer was behind")
    rig.step_to(T0 + timedelta(seconds=32))
    assert slots(rig.settled(3))[-1] == (32, "schedule", "succeeded")  # and on it goes, one slot at a time


@pytest.mark.parametrize("rig", ["latest"], indirect=True)
def test_a_forward_step_with_catchup_latest_runs_the_newest_slot_once_and_sums_up_the_rest(rig: Rig) -> None:
    rig.step_to(T0 + S)
    rig.settled(1)
    rig.step_to(T0 + timedelta(seconds=301, milliseconds=200))  # +300 s
    rows = rig.settled(3)
    assert slots(rows) == [(1, "schedule", "succeeded"), (300, "catchup", "missed"), (301, "catchup", "succeeded")]
    assert (rows[1].error or "").startswith("299 slot(s) missed while the timer was behind")


def test_a_backward_step_fires_no_slot_again(rig: Rig) -> None:
    rig.step_to(T0 + S)
    rig.settled(1)
    rig.step_to(T0 - timedelta(minutes=1))  # back by 61 s
    assert not rig.fired.wait(1.5)
    rig.step_to(T0 + timedelta(seconds=1, milliseconds=500))  # the fired slot's time, again
    assert not rig.fired.wait(1.5)
    rig.step_to(T0 + timedelta(seconds=2))
    assert rig.fired.wait(5)
    assert slots(rig.settled(2)) == [(1, "schedule", "succeeded"), (2, "schedule", "succeeded")]
    assert rig.dispatched == [T0 + S, T0 + 2 * S]
