"""The dependency rules of the policy (issue 18): `schedule.after` (trigger) and `requires` (gate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Ended, Queue, Request, RunStatus, Skip, SkipReason

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def schedule(text: str) -> Schedule:
    result = Loader().load_bytes("s.yaml", text.encode(), NOW)
    assert not [p for p in result.problems if p.severity == "error"], result.problems
    return result.schedules[0]


def after(upstreams: str, on: str = "success", all_: bool = False) -> Schedule:
    return schedule(f"name: d\nschedule: {{after: [{upstreams}], on: {on}, all: {str(all_).lower()}}}\n"
                    "run: {command: [x]}\n")


def gated(requires: str, deadline: str = "1m") -> Schedule:
    return schedule(f"name: g\nschedule: {{every: 1h}}\nrun: {{command: [x]}}\n"
                    f"policy: {{starting_deadline: {deadline}}}\nrequires: {requires}\n")


def test_on_success_is_triggered_by_a_final_success_only() -> None:
    d = after("a")
    assert policy.triggers(d, "a", RunStatus.SUCCEEDED, True, {})
    assert not policy.triggers(d, "a", RunStatus.FAILED, True, {})
    assert not policy.triggers(d, "a", RunStatus.SUCCEEDED, False, {})  # not the last word on its slot
    assert not policy.triggers(d, "b", RunStatus.SUCCEEDED, True, {})  # not one of its upstreams


def test_on_failure_counts_timeouts_and_abandoned_runs_and_on_finished_counts_either() -> None:
    for status in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED):
        assert policy.triggers(after("a", "failure"), "a", status, True, {})
        assert policy.triggers(after("a", "finished"), "a", status, True, {})
    assert not policy.triggers(after("a", "failure"), "a", RunStatus.SUCCEEDED, True, {})
    assert policy.triggers(after("a", "finished"), "a", RunStatus.SUCCEEDED, True, {})
    for status in (RunStatus.SKIPPED, RunStatus.MISSED, RunStatus.CANCELLED, RunStatus.INTERRUPTED):
        assert not policy.triggers(after("a", "finished"), "a", status, True, {})


def test_all_waits_until_every_upstream_has_ended_matching_for_the_same_slot() -> None:
    d = after("a, b", all_=True)
    assert not policy.triggers(d, "a", RunStatus.SUCCEEDED, True, {"a": RunStatus.SUCCEEDED, "b": None})
    assert not policy.triggers(d, "a", RunStatus.SUCCEEDED, True, {"b": RunStatus.FAILED})
    assert policy.triggers(d, "a", RunStatus.SUCCEEDED, True, {"b": RunStatus.SUCCEEDED})
    assert policy.triggers(after("a, b"), "a", RunStatus.SUCCEEDED, True, {"b": None})  # any one (default)


def test_a_suspended_downstream_is_never_triggered() -> None:
    d = schedule("name: d\nenabled: false\nschedule: {after: [a]}\nrun: {command: [x]}\n")
    assert not policy.triggers(d, "a", RunStatus.SUCCEEDED, True, {})


def test_a_gate_that_holds_lets_the_slot_run() -> None:
    g = gated("[{schedule: a, status: succeeded, within: 24h}]")
    ok = {"a": Ended(RunStatus.SUCCEEDED, NOW - timedelta(hours=23))}
    assert policy.gate(g, Request(Cause.SCHEDULE, 1, NOW), NOW, ok) is None


def test_a_gate_that_does_not_hold_waits_within_the_deadline_then_skips_with_the_reason() -> None:
    g = gated("[{schedule: a, status: succeeded, within: 24h}]", deadline="30s")
    stale = {"a": Ended(RunStatus.SUCCEEDED, NOW - timedelta(hours=25))}
    waiting = policy.gate(g, Request(Cause.SCHEDULE, 1, NOW - timedelta(seconds=10)), NOW, stale)
    assert waiting == Queue(policy.GATE_POLL, NOW - timedelta(seconds=10))
    skipped = policy.gate(g, Request(Cause.SCHEDULE, 1, NOW - timedelta(seconds=31)), NOW, stale)
    assert isinstance(skipped, Skip)
    assert skipped.reason == SkipReason.DEPENDENCY
    assert skipped.recorded
    assert skipped.message == ("dependency: the last run of 'a' ended at 2026-11-21T11:00:00Z, "
                               "longer ago than 1d")
    failed = policy.gate(g, Request(Cause.SCHEDULE, 1, NOW - timedelta(minutes=5)), NOW,
                         {"a": Ended(RunStatus.FAILED, NOW)})
    assert isinstance(failed, Skip)
    assert failed.message == "dependency: the last run of 'a' failed (requires succeeded)"
    never = policy.gate(g, Request(Cause.SCHEDULE, 1, NOW - timedelta(minutes=5)), NOW, {"a": None})
    assert isinstance(never, Skip)
    assert never.message == "dependency: 'a' has no ended run (requires succeeded)"


def test_a_slot_skipped_by_a_requirement_raises_a_missed_notification() -> None:
    assert policy.events_for(RunStatus.SKIPPED, False, "dependency: x") == {"missed"}
    assert policy.events_for(RunStatus.SKIPPED, False, policy.FORBID) == set()


def test_requires_self_stops_after_a_failure_until_a_manual_run_resets_it() -> None:
    g = gated("[{schedule: self, status: succeeded}]", deadline="1s")
    late = Request(Cause.SCHEDULE, 1, NOW - timedelta(seconds=5))
    assert policy.gate(g, late, NOW, {"g": None}) is None  # a new schedule starts
    assert policy.gate(g, late, NOW, {"g": Ended(RunStatus.SUCCEEDED, NOW)}) is None
    stopped = policy.gate(g, late, NOW, {"g": Ended(RunStatus.FAILED, NOW)})
    assert isinstance(stopped, Skip)
    assert stopped.message == "dependency: its own last run failed (requires succeeded)"
    # The reset: a manual run is never gated, and its success is the newest ended run.
    assert policy.gate(g, Request(Cause.MANUAL, 1, NOW), NOW, {"g": Ended(RunStatus.FAILED, NOW)}) is None
    assert policy.gate(g, Request(Cause.RETRY, 2, NOW), NOW, {"g": Ended(RunStatus.FAILED, NOW)}) is None
    assert policy.required_names(g) == ("g",)


def test_a_schedule_after_others_is_active_without_a_fire_time_of_its_own() -> None:
    assert policy.schedule_state(True, False, None, triggered=True) == policy.ScheduleState.ACTIVE
    assert policy.schedule_state(True, False, None) == policy.ScheduleState.COMPLETED
