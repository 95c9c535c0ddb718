"""The timer's shelf (issue 16: memory at 100,000 schedules): a schedule due beyond the horizon
waits in a heap of our own instead of as an APScheduler job, and becomes one in time to fire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.engine.timer import Timer, slot_job
from reconciler.engine.trigger import SlotTrigger
from tests.harness import wait_for

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def schedule(name: str, **when: Any) -> Schedule:
    built = build_from_spec({"name": name, "schedule": when or {"every": "1h"}, "run": {"command": ["true"]}},
                            "test", Loader())
    assert built is not None
    return built


def put(timer: Timer, s: Schedule, now: datetime, paused: bool = False) -> datetime | None:
    trigger = SlotTrigger(s.timing)
    first = None if paused else trigger.get_next_fire_time(None, now)
    timer.put([slot_job(timer, s.name, trigger, first)])
    return first


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + timedelta(seconds=1))


@pytest.fixture
def timer(clock: FakeClock) -> Iterator[Timer]:
    """Started paused: its thread never processes jobs, so each step is the test's own call."""
    t = Timer(lambda *_: None, clock=clock)
    t.start(paused=True)
    yield t
    t.shutdown(wait=False)


def in_store(timer: Timer) -> set[str]:
    return {job.id for job in timer._scheduler.get_jobs()}


def test_a_schedule_due_beyond_the_horizon_is_shelved_and_still_listed_with_its_exact_fire_time(
        timer: Timer, clock: FakeClock) -> None:
    near = put(timer, schedule("near", every="1m"), clock.now)
    far = put(timer, schedule("far", at="2030-01-01T03:00:00.250000Z"), clock.now)
    held = put(timer, schedule("held"), clock.now, paused=True)
    assert held is None
    assert in_store(timer) == {"near", "held"}
    assert timer.next_fire_times() == {"near": near, "far": far, "held": None}
    assert far == datetime(2030, 1, 1, 3, 0, 0, 250000, tzinfo=UTC)


def test_a_shelved_schedule_becomes_a_job_with_its_fire_time_once_due_within_the_horizon(
        timer: Timer, clock: FakeClock) -> None:
    far = put(timer, schedule("far", every="1h"), clock.now)
    assert far == T0 + timedelta(hours=1)
    clock.now = far - timer.horizon - timedelta(seconds=1)
    timer._promote()
    assert in_store(timer) == set()
    clock.now += timedelta(seconds=1)
    timer._promote()
    (job,) = timer._scheduler.get_jobs()
    assert (job.id, job.next_run_time) == ("far", far)
    assert timer.next_fire_times() == {"far": far}


def test_after_a_forward_clock_step_past_its_fire_time_a_shelved_schedule_is_a_job_due_at_once(
        timer: Timer, clock: FakeClock) -> None:
    far = put(timer, schedule("far", every="1h"), clock.now)
    clock.now = T0 + timedelta(days=2)
    timer._promote()
    (job,) = timer._scheduler.get_jobs()
    # As if it had been a job all along: its missed fire time is due, and the trigger (with the
    # executor) hands the gap to catch-up.
    assert job.next_run_time == far
    assert far is not None
    assert job.trigger.get_next_fire_time(far, clock.now) == T0 + timedelta(days=2)


def test_after_a_backward_clock_step_a_job_due_far_off_goes_back_on_the_shelf_unchanged(
        timer: Timer, clock: FakeClock) -> None:
    clock.now = T0 + timedelta(minutes=58)
    first = put(timer, schedule("soon", every="1h"), clock.now)
    assert in_store(timer) == {"soon"}
    clock.now = T0 - timedelta(hours=3)
    timer._demote()
    assert in_store(timer) == set()
    assert timer.next_fire_times() == {"soon": first}


def test_removing_or_replacing_a_shelved_schedule_leaves_no_trace_of_the_old_one(
        timer: Timer, clock: FakeClock) -> None:
    put(timer, schedule("gone", every="1h"), clock.now)
    put(timer, schedule("moved", every="1h"), clock.now)
    assert timer.remove("gone") is True
    assert timer.remove("gone") is False
    changed = put(timer, schedule("moved", every="3h"), clock.now)
    assert timer.next_fire_times() == {"moved": changed}
    clock.now = T0 + timedelta(hours=1)
    timer._promote()  # the stale entries of both are due now: neither becomes a job
    assert in_store(timer) == set()
    clock.now = T0 + timedelta(hours=3)
    timer._promote()
    assert {j.id: j.next_run_time for j in timer._scheduler.get_jobs()} == {"moved": changed}


def test_a_job_replaced_by_a_far_one_leaves_the_store_and_a_shelved_one_replaced_by_a_near_one_joins_it(
        timer: Timer, clock: FakeClock) -> None:
    put(timer, schedule("a", every="1m"), clock.now)
    put(timer, schedule("b", every="1h"), clock.now)
    a = put(timer, schedule("a", every="1h"), clock.now)
    b = put(timer, schedule("b", every="1m"), clock.now)
    assert in_store(timer) == {"b"}
    assert timer.next_fire_times() == {"a": a, "b": b}
    timer.clear()
    assert timer.next_fire_times() == {}


def test_a_jittered_schedule_keeps_its_fire_to_slot_mapping_across_the_shelf(timer: Timer, clock: FakeClock) -> None:
    fire = put(timer, schedule("j", every="1h", jitter="10m"), clock.now)
    assert fire is not None
    clock.now = fire - timedelta(seconds=1)
    timer._promote()
    (job,) = timer._scheduler.get_jobs()
    assert job.next_run_time == fire
    assert job.trigger.slot_for(fire) == T0 + timedelta(hours=1)


def test_a_shelved_schedule_fires_every_slot_in_time_as_it_moves_on_and_off_the_shelf() -> None:
    """A real timer with a horizon shorter than the interval: each slot is promoted, fires, and
    the job is shelved again until the next one."""
    fired: list[tuple[datetime, datetime]] = []
    done = threading.Event()

    def dispatch(name: str, slot: datetime, fire_time: datetime, **_: Any) -> None:
        fired.append((slot, datetime.now(UTC)))
        if len(fired) >= 2:
            done.set()

    t = Timer(dispatch)
    t.horizon = timedelta(milliseconds=300)
    t.start(paused=True)
    try:
        now = datetime.now(UTC)
        start = now.replace(microsecond=0) + timedelta(seconds=2)
        first = put(t, schedule("tick", every="1s", start=start.isoformat().replace("+00:00", "Z")), now)
        assert first == start
        assert in_store(t) == set()
        t.resume()
        assert done.wait(10)
        assert [slot for slot, _ in fired[:2]] == [start, start + timedelta(seconds=1)]
        assert all(at >= slot for slot, at in fired)
        wait_for(lambda: in_store(t) == set(), timeout=5, what="the job shelved again after it fired")
        assert t.next_fire_times()["tick"] is not None
    finally:
        t.shutdown(wait=False)


def test_put_slots_builds_jobs_only_for_what_is_due_within_the_horizon(timer: Timer, clock: FakeClock) -> None:
    near, far, held = (SlotTrigger(schedule(n, every=e).timing)
                       for n, e in (("near", "1m"), ("far", "1h"), ("held", "1h")))
    near_fire, far_fire = near.get_next_fire_time(None, clock.now), far.get_next_fire_time(None, clock.now)
    timer.put_slots([("near", near, near_fire), ("far", far, far_fire), ("held", held, None)])
    assert in_store(timer) == {"near", "held"}
    assert timer.next_fire_times() == {"near": near_fire, "far": far_fire, "held": None}
