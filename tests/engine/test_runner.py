"""The runner's policies with a real ledger and real processes (no daemon)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.engine.catchup import catch_up
from reconciler.engine.leases import ABANDONED, reap
from reconciler.engine.runner import SHUTDOWN_KILL_AFTER, Runner
from reconciler.kinds.command.spec import CommandRun
from reconciler.kinds.procs import RunProcesses, Supervisor, Whereabouts, is_live
from reconciler.ledger.base import Outcome, RunRecord
from reconciler.ledger.sqlite import SqliteLedger
from tests.harness import wait_for

NOW = datetime.now(UTC).replace(microsecond=0)


def schedule(text: str) -> Schedule:
    result = Loader().load_bytes("s.yaml", text.encode(), NOW)
    assert not result.problems, result.problems
    return result.schedules[0]


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def make_runner(ledger: SqliteLedger, *schedules: Schedule, env: dict[str, str] | None = None) -> Runner:
    r = Runner(ledger, log=Logs(), environ=env or {"PATH": "/usr/bin:/bin"})
    r.update({s.name: s for s in schedules}, "rev-1")
    return r


def processes(ledger: SqliteLedger, run_id: int) -> str | None:
    row = ledger._db.execute("SELECT processes FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row[0] if row else None


def runs(ledger: SqliteLedger, name: str) -> list[RunRecord]:
    return sorted(ledger.runs(name, limit=100), key=lambda r: r.id)


def slow(policy: str, name: str = "slow") -> Schedule:
    return schedule(f"name: {name}\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sleep, '1.5']}}\n"
                    f"policy: {{concurrency: {policy}}}\n")


def overlap(ledger: SqliteLedger, s: Schedule) -> list[RunRecord]:
    r = make_runner(ledger, s)
    now = datetime.now(UTC)
    r.dispatch(s.name, now)
    wait_for(lambda: r.running(s.name) == 1, what="the first run to start")
    r.dispatch(s.name, now + timedelta(seconds=1))
    wait_for(lambda: len(runs(ledger, s.name)) == 2 and all(x.status != "running" for x in runs(ledger, s.name)),
             timeout=10, what="both slots to be recorded")
    r.shutdown(5)
    return runs(ledger, s.name)


def test_forbid_records_the_overlapping_slot_as_skipped(ledger: SqliteLedger) -> None:
    first, second = overlap(ledger, slow("forbid"))
    assert (first.status, second.status) == ("succeeded", "skipped")
    assert second.error == "the previous run is still running (concurrency: forbid)"


def test_allow_runs_both(ledger: SqliteLedger) -> None:
    first, second = overlap(ledger, slow("allow"))
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert second.started_at is not None
    assert first.finished_at is not None
    assert second.started_at < first.finished_at  # they overlapped


def test_replace_cancels_the_running_one_and_starts_the_new_one(ledger: SqliteLedger) -> None:
    first, second = overlap(ledger, slow("replace"))
    assert (first.status, second.status) == ("cancelled", "succeeded")


def test_a_slot_that_cannot_start_within_the_deadline_is_missed(ledger: SqliteLedger) -> None:
    s = schedule("name: late\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\npolicy: {starting_deadline: 30s}\n")
    r = make_runner(ledger, s)
    r.dispatch("late", datetime.now(UTC) - timedelta(minutes=2))
    wait_for(lambda: runs(ledger, "late"), what="a record")
    r.shutdown(5)
    (run,) = runs(ledger, "late")
    assert run.status == "missed"
    assert "starting_deadline" in (run.error or "")


def test_failures_are_retried_with_exponential_backoff_each_attempt_its_own_row(ledger: SqliteLedger) -> None:
    s = schedule("name: flaky\nschedule: {every: 1h}\nrun: {command: [/bin/false]}\n"
                 "policy: {retries: {limit: 2, backoff: 300ms, max_backoff: 10s}}\n")
    assert [s.policy.retries.delay_before(a).total_seconds() for a in (2, 3, 4)] == [0.3, 0.6, 1.2]
    r = make_runner(ledger, s)
    r.dispatch("flaky", datetime.now(UTC))
    wait_for(lambda: len(runs(ledger, "flaky")) == 3 and runs(ledger, "flaky")[-1].status != "running",
             timeout=10, what="three attempts")
    time.sleep(1.0)
    r.shutdown(5)
    attempts = runs(ledger, "flaky")
    assert [(a.attempt, a.cause, a.status) for a in attempts] == [
        (1, "schedule", "failed"), (2, "retry", "failed"), (3, "retry", "failed")]
    assert len({a.slot for a in attempts}) == 1
    gaps = [(b.started_at - a.finished_at).total_seconds()  # type: ignore[operator]
            for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.3
    assert gaps[1] >= 0.6


def test_max_runs_completes_the_schedule(ledger: SqliteLedger) -> None:
    s = schedule("name: twice\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\npolicy: {max_runs: 2}\n")
    r = make_runner(ledger, s)
    completed: list[str] = []
    r.on_completed = completed.append
    for i in range(3):
        r.dispatch("twice", datetime.now(UTC) + timedelta(hours=i))
        # One at a time (on a busy machine a run can outlast a fixed pause, and forbid would skip).
        wait_for(functools.partial(settled, ledger, "twice", min(i + 1, 2)), what=f"run {i + 1} to end")
    wait_for(lambda: completed, what="completion")
    r.shutdown(5)
    assert [x.status for x in runs(ledger, "twice")] == ["succeeded", "succeeded"]
    assert completed == ["twice"]


def test_secret_values_never_reach_the_ledger_or_the_logs(ledger: SqliteLedger, tmp_path: Path) -> None:
    s = schedule("name: secretive\nschedule: {every: 1h}\n"
                 "run: {command: [/bin/sh, -c, 'echo token=$TOKEN; exit 1'], env: {TOKEN: {from_env: MY_TOKEN}}}\n")
    r = make_runner(ledger, s, env={"PATH": "/bin", "MY_TOKEN": "hunter2-very-secret"})
    r.dispatch("secretive", datetime.now(UTC))
    wait_for(lambda: runs(ledger, "secretive") and runs(ledger, "secretive")[0].status != "running", what="a run")
    r.shutdown(5)
    (run,) = runs(ledger, "secretive")
    full = ledger.run(run.id)
    assert full is not None
    assert full.output == "token=[redacted]\n"
    ledger.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("l.db*"))
    assert b"hunter2" not in raw
    assert "hunter2" not in repr(r._log.lines)  # type: ignore[attr-defined]


def test_each_run_sees_its_identity_in_the_environment(ledger: SqliteLedger) -> None:
    s = schedule("name: ident\nschedule: {every: 1h}\nrun: {command: [/bin/sh, -c, "
                 "'echo $RECONCILER_SCHEDULE $RECONCILER_SLOT $RECONCILER_RUN_ID $RECONCILER_ATTEMPT "
                 "$RECONCILER_REVISION']}\n")
    r = make_runner(ledger, s)
    slot = datetime(2026, 1, 1, 12, tzinfo=UTC)
    r.update({"ident": s}, "rev-1")
    r.dispatch("ident", slot, datetime.now(UTC))
    wait_for(lambda: runs(ledger, "ident") and runs(ledger, "ident")[0].status != "running", what="a run")
    r.shutdown(5)
    (run,) = runs(ledger, "ident")
    full = ledger.run(run.id)
    assert full is not None
    assert full.output == f"ident 2026-01-01T12:00:00Z {run.id} 1 rev-1\n"


def every_minute(policy: str) -> Schedule:
    return schedule(f"name: minutely\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\n"
                    f"policy: {{catchup: {policy}}}\n")


def seed_last_run(ledger: SqliteLedger, at: datetime) -> None:
    run_id = ledger.claim("minutely", at, attempt=1, cause=Cause.SCHEDULE, revision="old", started_at=at)
    assert run_id is not None
    from reconciler.ledger.base import Outcome

    ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, at))


T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_catchup_none_records_one_missed_summary_and_runs_nothing(ledger: SqliteLedger) -> None:
    seed_last_run(ledger, T)
    dispatched: list[tuple[Any, ...]] = []
    count = catch_up(ledger, {"minutely": every_minute("none")}, "rev-2", T + timedelta(minutes=10, seconds=30),
                     lambda *a, **k: dispatched.append((*a, k)), Logs())
    assert count == 10  # 12:01 .. 12:10
    assert dispatched == []
    summary = runs(ledger, "minutely")[-1]
    assert (summary.status, summary.cause, summary.slot) == ("missed", "catchup", T + timedelta(minutes=10))
    assert (summary.error or "").startswith("10 slot(s) missed while no reconciler was running")


def test_catchup_latest_runs_the_most_recent_missed_slot_once(ledger: SqliteLedger) -> None:
    seed_last_run(ledger, T)
    dispatched: list[tuple[Any, ...]] = []
    catch_up(ledger, {"minutely": every_minute("latest")}, "rev-2", T + timedelta(minutes=10, seconds=30),
             lambda *a, **k: dispatched.append((*a, k)), Logs())
    assert dispatched == [("minutely", T + timedelta(minutes=10), T + timedelta(minutes=10), {"cause": "catchup"})]
    summary = runs(ledger, "minutely")[-1]
    assert (summary.status, summary.slot) == ("missed", T + timedelta(minutes=9))
    assert (summary.error or "").startswith("9 slot(s) missed")


def test_catchup_ignores_schedules_without_history(ledger: SqliteLedger) -> None:
    assert catch_up(ledger, {"minutely": every_minute("latest")}, "r", T, lambda *a, **k: None, Logs()) == 0


@pytest.mark.parametrize(("finished_ago", "cause", "attempt", "expected"), [
    (timedelta(seconds=5), Cause.SCHEDULE, 1, [("a", 2, 5.0)]),  # backoff 10s: 5 s left
    (timedelta(seconds=30), Cause.SCHEDULE, 1, [("a", 2, 0.0)]),  # overdue by 20 s, within the 1m deadline
    (timedelta(minutes=5), Cause.SCHEDULE, 1, []),  # overdue by longer than starting_deadline: dropped
    (timedelta(seconds=5), Cause.RETRY, 3, []),  # no attempts left (limit 2)
    (timedelta(seconds=5), Cause.MANUAL, 1, [("a", 2, 5.0)]),  # manual runs are retried too, as they were
])
def test_pending_retries_are_resumed_after_a_restart_unless_overdue_or_used_up(
        ledger: SqliteLedger, finished_ago: timedelta, cause: Cause, attempt: int,
        expected: list[tuple[str, int, float]]) -> None:
    from reconciler.engine.catchup import resume_retries

    s = schedule("name: a\nschedule: {every: 1h}\nrun: {command: [/bin/false]}\n"
                 "policy: {retries: {limit: 2, backoff: 10s}}\n")
    slot = NOW - timedelta(minutes=10)
    run_id = ledger.claim("a", slot, attempt=attempt, cause=cause, revision="r", started_at=NOW - finished_ago)
    assert run_id is not None
    ledger.finish(run_id, Outcome(RunStatus.FAILED, NOW - finished_ago, exit_code=1))
    asked: list[tuple[str, int, float]] = []
    logs = Logs()
    resumed = resume_retries(ledger, {"a": s}, "r", NOW,
                             lambda name, sl, att, delay: asked.append((name, att, delay.total_seconds())),
                             logs)
    assert asked == expected
    assert resumed == len(expected)
    if finished_ago == timedelta(minutes=5):
        assert [e for e, _ in logs.lines] == ["run.retry_dropped"]
        dropped = runs(ledger, "a")[-1]
        assert (dropped.attempt, dropped.cause, dropped.status) == (2, "retry", "missed")
        assert "longer ago than starting_deadline" in (dropped.error or "")
        # Recorded, so the next start does not drop (and log) it again.
        assert resume_retries(ledger, {"a": s}, "r", NOW, lambda *a: asked.append(a), logs) == 0
        assert [e for e, _ in logs.lines] == ["run.retry_dropped"]


def test_every_slot_with_a_retry_owed_is_resumed_not_only_the_newest_row(ledger: SqliteLedger) -> None:
    from reconciler.engine.catchup import resume_retries

    s = schedule("name: a\nschedule: {every: 2s}\nrun: {command: [/bin/false]}\n"
                 "policy: {retries: {limit: 1, backoff: 5s}}\n")
    quiet = schedule("name: q\nschedule: {every: 2s}\nrun: {command: [/bin/false]}\n")  # no retries
    t = NOW - timedelta(seconds=6)
    for i, status in enumerate(["failed", "failed", "failed", "succeeded"]):  # slots -6 s .. 0 s
        run_id = ledger.claim("a", t + timedelta(seconds=2 * i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                              started_at=t + timedelta(seconds=2 * i))
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus(status), t + timedelta(seconds=2 * i), exit_code=1))
    retried = ledger.claim("a", t, attempt=2, cause=Cause.RETRY, revision="r", started_at=NOW)  # slot -6 s: done
    assert retried is not None
    q = ledger.claim("q", t, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=t)
    assert q is not None
    ledger.finish(q, Outcome(RunStatus.FAILED, t, exit_code=1))
    asked: list[tuple[str, datetime, int, float]] = []
    resumed = resume_retries(ledger, {"a": s, "q": quiet}, "r", NOW,
                             lambda name, sl, att, delay: asked.append((name, sl, att, delay.total_seconds())),
                             Logs())
    assert asked == [("a", t + timedelta(seconds=2), 2, 1.0), ("a", t + timedelta(seconds=4), 2, 3.0)]
    assert resumed == 2


def two_slots(policy: str) -> Schedule:
    """Slots on the hour fail at once; any other slot runs for 1.5 s."""
    return schedule("name: two\nschedule: {every: 1h}\n"
                    "run: {command: [/bin/sh, -c, 'case $RECONCILER_SLOT in *:00:00Z) exit 1;; *) sleep 1.5;; esac']}\n"
                    f"policy: {{concurrency: forbid, {policy}}}\n")


def fail_then_overlap(ledger: SqliteLedger, s: Schedule) -> list[RunRecord]:
    r = make_runner(ledger, s)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    r.dispatch("two", hour, datetime.now(UTC))  # fails; its retry comes 300 ms later
    wait_for(lambda: runs(ledger, "two") and runs(ledger, "two")[0].status == "failed", what="the failure")
    r.dispatch("two", hour + timedelta(minutes=30), datetime.now(UTC))  # runs 1.5 s, through the retry's time
    wait_for(lambda: len(runs(ledger, "two")) == 3 and all(x.status != "running" for x in runs(ledger, "two")),
             timeout=10, what="the retry to be recorded")
    r.shutdown(5)
    return runs(ledger, "two")


def test_a_retry_of_a_forbid_schedule_waits_for_the_running_run_then_runs(ledger: SqliteLedger) -> None:
    first, other, retry = fail_then_overlap(ledger, two_slots("retries: {limit: 1, backoff: 300ms}"))
    assert [(x.attempt, x.cause, x.status) for x in (first, other, retry)] == [
        (1, "schedule", "failed"), (1, "schedule", "succeeded"), (2, "retry", "failed")]
    assert retry.slot == first.slot
    assert other.finished_at is not None
    assert retry.started_at is not None
    assert retry.started_at >= other.finished_at, "the retry overlapped a run of a forbid schedule"


def test_a_retry_still_blocked_at_its_starting_deadline_is_skipped(ledger: SqliteLedger) -> None:
    first, other, retry = fail_then_overlap(
        ledger, two_slots("starting_deadline: 500ms, retries: {limit: 1, backoff: 300ms}"))
    assert (other.status, retry.attempt, retry.cause, retry.status) == ("succeeded", 2, "retry", "skipped")
    assert retry.error == "the previous run is still running (concurrency: forbid)"
    assert retry.slot == first.slot


def test_a_manual_run_of_a_forbid_schedule_is_skipped_while_another_run_runs(ledger: SqliteLedger) -> None:
    s = slow("forbid")
    r = make_runner(ledger, s)
    r.dispatch("slow", datetime.now(UTC))
    wait_for(lambda: r.running("slow") == 1, what="the scheduled run to start")
    run_id = r.run_now("slow")  # what `reconciler trigger` calls
    assert run_id is not None
    manual = ledger.run(run_id)
    assert manual is not None
    assert (manual.cause, manual.status, manual.error) == (
        "manual", "skipped", "the previous run is still running (concurrency: forbid)")
    r.shutdown(5)


def test_a_manual_run_of_an_allow_schedule_runs_alongside(ledger: SqliteLedger) -> None:
    s = slow("allow")
    r = make_runner(ledger, s)
    r.dispatch("slow", datetime.now(UTC))
    wait_for(lambda: r.running("slow") == 1, what="the scheduled run to start")
    run_id = r.run_now("slow")
    r.shutdown(5)
    assert run_id is not None
    manual = ledger.run(run_id)
    assert manual is not None
    assert (manual.cause, manual.status) == ("manual", "succeeded")


def test_a_forbid_run_whose_lease_expired_is_abandoned_not_waited_for(ledger: SqliteLedger) -> None:
    s = slow("forbid")
    # Its owner stopped renewing it: the lease ran out (a negative lease: expired from the start).
    stale = ledger.claim("slow", datetime.now(UTC) - timedelta(hours=1), attempt=1, cause=Cause.SCHEDULE, revision="r",
                         started_at=datetime.now(UTC), owner="gone", exclusive=True, lease=timedelta(seconds=-1))
    assert stale is not None
    r = make_runner(ledger, s)
    r.dispatch("slow", datetime.now(UTC))
    wait_for(lambda: len(runs(ledger, "slow")) == 2 and runs(ledger, "slow")[1].status != "running", timeout=10,
             what="the new slot to run")
    r.shutdown(5)
    old, new = runs(ledger, "slow")
    assert (old.status, old.error, new.status) == ("abandoned", ABANDONED, "succeeded")


def test_a_forbid_run_whose_lease_is_alive_holds_the_schedule_whoever_owns_it(ledger: SqliteLedger) -> None:
    s = slow("forbid")
    held = ledger.claim("slow", datetime.now(UTC) - timedelta(hours=1), attempt=1, cause=Cause.SCHEDULE, revision="r",
                        started_at=datetime.now(UTC), owner="another-replica", exclusive=True,
                        lease=timedelta(hours=1))
    assert held is not None
    r = make_runner(ledger, s)
    r.dispatch("slow", datetime.now(UTC))
    wait_for(lambda: len(runs(ledger, "slow")) == 2, timeout=10, what="the new slot to be recorded")
    r.shutdown(5)
    old, new = runs(ledger, "slow")
    assert (old.status, new.status) == ("running", "skipped")


# ---- no run is left running ------------------------------------------------------------------------


def with_argv(s: Schedule, *argv: str) -> Schedule:
    """What `validate` may come to refuse, built directly: the runner must survive it anyway."""
    assert isinstance(s.run, CommandRun)
    return dataclasses.replace(s, run=dataclasses.replace(s.run, argv=argv))


def settled(ledger: SqliteLedger, name: str, count: int) -> bool:
    done = runs(ledger, name)
    return len(done) == count and all(r.status != "running" for r in done)


def test_a_job_that_cannot_start_fails_its_run_and_is_retried_and_notified(ledger: SqliteLedger) -> None:
    s = with_argv(schedule("name: nul\nschedule: {every: 1h}\nrun: {command: [/bin/echo]}\n"
                           "policy: {retries: {limit: 1, backoff: 100ms}}\n"), "/bin/echo", "a\0b")
    r = make_runner(ledger, s)
    told: list[RunRecord] = []
    r.on_finished = lambda record, output: told.append(record)
    r.dispatch("nul", datetime.now(UTC))
    wait_for(lambda: settled(ledger, "nul", 2), timeout=10, what="two failed attempts")
    r.shutdown(5)
    attempts = runs(ledger, "nul")
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "failed")]
    assert all(a.error == "cannot start /bin/echo: embedded null byte" for a in attempts)
    assert [(t.attempt, t.status) for t in told] == [(1, "failed"), (2, "failed")]


def test_an_unexpected_error_while_running_fails_the_run_instead_of_leaving_it_running(
        ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.kinds.command.run as run_face

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(run_face, "start", broken)
    s = schedule("name: bug\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n")
    r = make_runner(ledger, s)
    r.dispatch("bug", datetime.now(UTC))
    wait_for(lambda: settled(ledger, "bug", 1), what="the run to finish")
    r.shutdown(5)
    (run,) = runs(ledger, "bug")
    assert (run.status, run.error) == ("failed", "could not run: RuntimeError: a bug")


# ---- shutdown ----------------------------------------------------------------------------------------


def test_shutdown_kills_a_job_that_ignores_sigterm_and_records_how_it_ended(ledger: SqliteLedger,
                                                                             tmp_path: Path) -> None:
    s = schedule("name: stubborn\nschedule: {every: 1h}\n"
                 f"run: {{command: [/bin/sh, -c, \"trap '' TERM; echo $$ > {tmp_path}/pid; sleep 30\"]}}\n")
    r = make_runner(ledger, s)
    r.dispatch("stubborn", datetime.now(UTC))
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(), what="the job to start")
    pid = int((tmp_path / "pid").read_text())
    start = time.monotonic()
    r.shutdown(0.5)
    elapsed = time.monotonic() - start
    (run,) = runs(ledger, "stubborn")
    assert elapsed < 0.5 + SHUTDOWN_KILL_AFTER + 1.5, f"shutdown took {elapsed:.1f}s"
    assert (run.status, run.exit_code) == ("interrupted", -9)
    assert run.error == ("the reconciler stopped and the grace period (0.5s) ended: killed by signal 9 "
                         f"(SIGKILL {SHUTDOWN_KILL_AFTER:g}s after SIGTERM)")
    assert not is_live(pid)


def test_a_job_that_ends_within_the_grace_is_recorded_as_it_ended(ledger: SqliteLedger) -> None:
    s = schedule("name: quick\nschedule: {every: 1h}\nrun: {command: [/bin/sh, -c, 'sleep 0.5; exit 4']}\n")
    r = make_runner(ledger, s)
    r.dispatch("quick", datetime.now(UTC))
    wait_for(lambda: r.running("quick") == 1, what="the job to start")
    r.shutdown(5)
    (run,) = runs(ledger, "quick")
    assert (run.status, run.exit_code, run.error) == ("failed", 4, "exited with status 4")


# ---- what a killed reconciler left behind -------------------------------------------------------------


def test_where_a_run_lives_is_in_the_ledger_while_it_runs(ledger: SqliteLedger, tmp_path: Path) -> None:
    s = schedule(f"name: where\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'echo $$ > {tmp_path}/pid; "
                 "sleep 30']}\n")
    r = make_runner(ledger, s)
    r.dispatch("where", datetime.now(UTC))
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(), what="the job to start")
    (run,) = runs(ledger, "where")
    where = Whereabouts.loads(processes(ledger, run.id))
    r.shutdown(0)
    assert where is not None
    assert where.here()
    assert where.pgid == int((tmp_path / "pid").read_text())


@pytest.fixture(params=["cgroup", "subreaper"])
def supervisor(request: pytest.FixtureRequest) -> Supervisor:
    if request.param == "subreaper":
        return Supervisor(None)
    detected = Supervisor.detect({})
    if detected.cgroup_parent is None:
        pytest.skip("no cgroup v2 hierarchy we may create cgroups in here")
    return detected


def orphan(ledger: SqliteLedger, supervisor: Supervisor, tmp_path: Path, script: str,
           marker_of: int | None = None) -> tuple[int, RunProcesses]:
    """A run claimed by a reconciler that is gone, whose job still runs: started here, then left."""
    run_id = ledger.claim("left", NOW, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=NOW,
                          owner="gone-host:1:0", lease=timedelta(seconds=-1))
    assert run_id is not None
    env = {"PATH": "/usr/bin:/bin", "RECONCILER_RUN_ID": str(marker_of or run_id)}
    procs = supervisor.spawn(["/bin/sh", "-c", script], cwd=str(tmp_path), env=env,
                             marker=f"RECONCILER_RUN_ID={run_id}")
    ledger.set_processes(run_id, procs.whereabouts().dumps())
    wait_for(lambda: (tmp_path / "ready").exists(), what="the orphan to start")
    return run_id, procs


def test_reaping_a_run_whose_lease_expired_stops_what_it_left_running(
        ledger: SqliteLedger, supervisor: Supervisor, tmp_path: Path) -> None:
    # `: > ready`, not `touch`: a touch process still exiting would be counted among what was left.
    script = "trap '' TERM; sleep 30 & echo $! > child; : > ready; wait"
    run_id, procs = orphan(ledger, supervisor, tmp_path, script)
    child = int((tmp_path / "child").read_text())
    logs = Logs()
    try:
        start = time.monotonic()
        assert reap(ledger, lambda: datetime.now(UTC), logs, grace=0.5) == 1
        assert time.monotonic() - start < 3
        assert not is_live(procs.pid)
        assert not is_live(child)
        run = ledger.run(run_id)
        assert run is not None
        assert run.status == "abandoned"
        assert run.error == (f"{ABANDONED}; 2 processes it left were still running "
                             "and were killed (SIGKILL after 0.5s)")
        assert [e for e, _ in logs.lines] == ["run.abandoned"]
        if procs.cgroup is not None:
            assert not procs.cgroup.exists()
    finally:
        procs.close()
        procs.proc.wait()
        assert procs.proc.stdout is not None
        procs.proc.stdout.close()


def test_a_process_group_that_is_no_longer_the_runs_is_left_alone(
        ledger: SqliteLedger, tmp_path: Path) -> None:
    # The recorded group id now names processes of another run (its marker differs): a reused id.
    run_id, procs = orphan(ledger, Supervisor(None), tmp_path, "touch ready; sleep 30", marker_of=999)
    try:
        assert reap(ledger, lambda: datetime.now(UTC), Logs(), grace=0.5) == 1
        assert is_live(procs.pid)
        run = ledger.run(run_id)
        assert run is not None
        assert (run.status, run.error) == ("abandoned", ABANDONED)
    finally:
        procs.close()
        procs.proc.wait()
        assert procs.proc.stdout is not None
        procs.proc.stdout.close()
