"""Each rule of the run policy, as a function of values: no ledger, no processes, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.cli import RunStatus as CliRunStatus
from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import (
    Cause,
    Claim,
    Miss,
    Queue,
    Request,
    RunStatus,
    ScheduleState,
    Skip,
    SkipReason,
)
from reconciler.core.timing import Missed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def schedule(policy_yaml: str = "{}", enabled: bool = True) -> Schedule:
    text = (f"name: job\nenabled: {str(enabled).lower()}\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\n"
            f"policy: {policy_yaml}\n")
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return s


def request(cause: Cause = Cause.SCHEDULE, attempt: int = 1, late: timedelta = timedelta(0)) -> Request:
    return Request(cause, attempt, NOW - late)


# ---- the vocabulary: the ledger's text and the API's JSON stay what they were ------------------------


def test_statuses_and_causes_are_the_texts_the_ledger_stores() -> None:
    assert policy.RUN_STATES == ("running", "succeeded", "failed", "timed_out", "cancelled", "skipped", "missed",
                                 "interrupted", "abandoned")
    assert [str(c) for c in Cause] == ["schedule", "manual", "retry", "catchup", "backfill", "upstream"]
    assert f"run.{RunStatus.TIMED_OUT}" == "run.timed_out"


def test_the_cli_offers_every_status_and_no_other() -> None:
    assert [str(s) for s in CliRunStatus] == [str(s) for s in RunStatus]


# ---- before the claim ----------------------------------------------------------------------------------


def test_a_scheduled_slot_later_than_its_starting_deadline_is_missed_and_says_how_late() -> None:
    decision = policy.decide(schedule("{starting_deadline: 30s}"), request(late=31 * S), NOW)
    assert decision == Miss(SkipReason.LATE, "could not start within starting_deadline (late by 0:00:31)")


def test_a_scheduled_slot_exactly_at_its_starting_deadline_is_claimed() -> None:
    assert isinstance(policy.decide(schedule("{starting_deadline: 30s}"), request(late=30 * S), NOW), Claim)


@pytest.mark.parametrize("cause", [Cause.CATCHUP, Cause.RETRY, Cause.MANUAL])
def test_only_a_slot_the_timer_delivered_is_missed_for_being_late(cause: Cause) -> None:
    assert isinstance(policy.decide(schedule("{starting_deadline: 30s}"), request(cause, late=timedelta(hours=2)),
                                    NOW), Claim)


@pytest.mark.parametrize(("concurrency", "exclusive"), [("forbid", True), ("allow", False), ("replace", False)])
def test_forbid_is_an_exclusive_claim_for_every_cause(concurrency: str, exclusive: bool) -> None:
    for cause in Cause:
        decision = policy.decide(schedule(f"{{concurrency: {concurrency}}}"), request(cause), NOW)
        assert isinstance(decision, Claim)
        assert decision.exclusive is exclusive


@pytest.mark.parametrize(("cause", "attempt", "replace"), [
    (Cause.SCHEDULE, 1, True), (Cause.CATCHUP, 1, True), (Cause.MANUAL, 1, False), (Cause.RETRY, 2, False),
])
def test_replace_stops_running_runs_for_a_new_slot_only(cause: Cause, attempt: int, replace: bool) -> None:
    decision = policy.decide(schedule("{concurrency: replace}"), request(cause, attempt), NOW)
    assert isinstance(decision, Claim)
    assert decision.replace is replace
    other = policy.decide(schedule("{concurrency: allow}"), request(cause, attempt), NOW)
    assert isinstance(other, Claim)
    assert not other.replace


@pytest.mark.parametrize(("cause", "attempt", "counted"), [
    (Cause.SCHEDULE, 1, True), (Cause.CATCHUP, 1, True), (Cause.MANUAL, 1, False), (Cause.RETRY, 2, False),
    (Cause.SCHEDULE, 2, False),
])
def test_a_first_attempt_of_a_scheduled_slot_counts_toward_max_runs(cause: Cause, attempt: int,
                                                                      counted: bool) -> None:
    decision = policy.decide(schedule("{max_runs: 3}"), request(cause, attempt), NOW)
    assert decision == Claim(exclusive=True, counted=counted, max_runs=3, replace=False)


# ---- after the ledger refused the claim ------------------------------------------------------------------


@pytest.mark.parametrize("blocked", [True, False])
def test_a_refused_claim_of_a_schedule_at_max_runs_completes_it(blocked: bool) -> None:
    decision = policy.refused(schedule("{max_runs: 2}"), request(Cause.MANUAL), NOW, started=2, blocked=blocked)
    assert decision == Skip(SkipReason.COMPLETED, "max_runs 2 reached")
    assert not decision.recorded


def test_a_slot_claimed_elsewhere_is_left_to_whoever_claimed_it() -> None:
    decision = policy.refused(schedule("{max_runs: 2}"), request(), NOW, started=1, blocked=False)
    assert decision == Skip(SkipReason.TAKEN)
    assert not decision.recorded


def test_a_slot_blocked_by_a_running_run_is_skipped_and_recorded() -> None:
    decision = policy.refused(schedule(), request(), NOW, started=0, blocked=True)
    assert decision == Skip(SkipReason.FORBID, policy.FORBID)
    assert decision.recorded


def test_a_blocked_retry_waits_for_the_running_run_within_its_starting_deadline() -> None:
    s = schedule("{starting_deadline: 30s}")
    assert policy.refused(s, request(Cause.RETRY, 2, late=30 * S), NOW, started=0, blocked=True) == Queue(
        policy.RETRY_POLL, NOW - 30 * S)
    late = policy.refused(s, request(Cause.RETRY, 2, late=31 * S), NOW, started=0, blocked=True)
    assert late == Skip(SkipReason.FORBID, policy.FORBID)


# ---- retries ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "attempt", "retried"), [
    (RunStatus.FAILED, 1, True), (RunStatus.TIMED_OUT, 2, True), (RunStatus.FAILED, 3, False),
    (RunStatus.SUCCEEDED, 1, False), (RunStatus.CANCELLED, 1, False), (RunStatus.INTERRUPTED, 1, False),
    (RunStatus.ABANDONED, 1, False), (RunStatus.SKIPPED, 1, False), (RunStatus.MISSED, 1, False),
])
def test_a_failed_or_timed_out_attempt_is_retried_while_attempts_are_left(status: RunStatus, attempt: int,
                                                                           retried: bool) -> None:
    retries = schedule("{retries: {limit: 2}}").policy.retries
    assert policy.should_retry(retries, status, attempt) is retried
    assert policy.final(retries, status, attempt) is not retried


def test_the_delay_before_a_retry_doubles_up_to_max_backoff() -> None:
    retries = schedule("{retries: {limit: 5, backoff: 10s, max_backoff: 30s}}").policy.retries
    delays = [policy.retry_delay(retries, RunStatus.FAILED, attempt) for attempt in range(1, 7)]
    assert delays == [10 * S, 20 * S, 30 * S, 30 * S, 30 * S, None]
    assert policy.retry_delay(retries, RunStatus.SUCCEEDED, 1) is None


@pytest.mark.parametrize(("finished_ago", "attempt", "expected"), [
    (5 * S, 1, Queue(5 * S, NOW + 5 * S)),  # backoff 10s: 5 s left
    (30 * S, 1, Queue(timedelta(0), NOW - 20 * S)),  # overdue by 20 s, within the 1m deadline
    (timedelta(minutes=5), 1, Miss(SkipReason.RETRY_LATE, "its retry was due at 2026-03-01T11:55:10Z, longer ago "
                                   "than starting_deadline")),
    (5 * S, 3, None),  # no attempts left (limit 2)
])
def test_a_retry_found_after_a_restart_is_queued_unless_overdue_or_used_up(
        finished_ago: timedelta, attempt: int, expected: Queue | Miss | None) -> None:
    s = schedule("{retries: {limit: 2, backoff: 10s}, starting_deadline: 1m}")
    assert policy.resume_retry(s, RunStatus.FAILED, attempt, NOW - finished_ago, NOW) == expected


def test_only_an_enabled_schedule_with_retries_can_owe_one() -> None:
    assert policy.retries_owed(schedule("{retries: {limit: 1}}"))
    assert not policy.retries_owed(schedule("{retries: {limit: 0}}"))
    assert not policy.retries_owed(schedule("{retries: {limit: 1}}", enabled=False))


# ---- catch-up -------------------------------------------------------------------------------------------------


def missed(count: int, capped: bool = False) -> Missed:
    first = NOW - count * timedelta(minutes=1)
    return Missed(count, first, NOW - timedelta(minutes=1), NOW - timedelta(minutes=2), capped)


def test_catchup_none_sums_every_missed_slot_up_in_one_row_and_runs_none() -> None:
    plan = policy.catch_up(schedule("{catchup: none}"), missed(3), "while no reconciler was running")
    assert (plan.summed, plan.summary_slot, plan.run) == (3, NOW - timedelta(minutes=1), None)
    assert plan.message == ("3 slot(s) missed while no reconciler was running "
                            "(2026-03-01T11:57:00Z .. 2026-03-01T11:59:00Z); catchup: none")


def test_catchup_latest_runs_the_newest_slot_once_and_sums_up_the_older_ones() -> None:
    plan = policy.catch_up(schedule("{catchup: latest}"), missed(3, capped=True), "while the timer was behind")
    assert (plan.summed, plan.summary_slot, plan.run) == (2, NOW - timedelta(minutes=2), NOW - timedelta(minutes=1))
    assert plan.message.startswith("2+ slot(s) missed while the timer was behind")
    single = policy.catch_up(schedule("{catchup: latest}"), missed(1), "")
    assert (single.summed, single.run) == (0, NOW - timedelta(minutes=1))


def test_a_suspended_schedule_is_not_caught_up() -> None:
    assert policy.catches_up(schedule())
    assert not policy.catches_up(schedule(enabled=False))


def test_catch_up_starts_after_the_newest_slot_of_every_cause_but_manual() -> None:
    assert {Cause.SCHEDULE, Cause.RETRY, Cause.CATCHUP} == policy.TIMELINE


# ---- notifications ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("was_failing", "status", "failing"), [
    (False, RunStatus.FAILED, True), (False, RunStatus.TIMED_OUT, True), (False, RunStatus.ABANDONED, True),
    (True, RunStatus.SUCCEEDED, False), (True, RunStatus.MISSED, True), (False, RunStatus.SKIPPED, False),
    (True, RunStatus.CANCELLED, True),
])
def test_a_failure_starts_a_failing_streak_and_only_a_success_ends_it(was_failing: bool, status: RunStatus,
                                                                       failing: bool) -> None:
    assert policy.still_failing(was_failing, status) is failing


@pytest.mark.parametrize(("status", "was_failing", "events"), [
    (RunStatus.FAILED, False, {"failure"}), (RunStatus.ABANDONED, True, {"failure", "failure-repeat"}),
    (RunStatus.SUCCEEDED, True, {"success", "recovery"}), (RunStatus.SUCCEEDED, False, {"success"}),
    (RunStatus.MISSED, False, {"missed"}), (RunStatus.INTERRUPTED, True, set()),
])
def test_the_events_a_final_outcome_raises(status: RunStatus, was_failing: bool, events: set[str]) -> None:
    assert policy.events_for(status, was_failing) == events


# ---- what a schedule is now ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "completed", "next_fire", "state"), [
    (False, True, NOW, ScheduleState.SUSPENDED),
    (True, True, NOW, ScheduleState.COMPLETED),
    (True, False, None, ScheduleState.COMPLETED),
    (True, False, NOW, ScheduleState.ACTIVE),
])
def test_a_schedule_is_suspended_completed_or_active(enabled: bool, completed: bool, next_fire: datetime | None,
                                                     state: ScheduleState) -> None:
    assert policy.schedule_state(enabled, completed, next_fire) == state


def test_the_started_count_is_asked_of_the_ledger_only_under_max_runs() -> None:
    assert policy.needs_started(schedule("{max_runs: 1}"))
    assert not policy.needs_started(schedule())


def test_max_runs_is_reached_when_the_counted_runs_reach_it() -> None:
    assert not policy.completed(None, 10**6)
    assert not policy.completed(3, 2)
    assert policy.completed(3, 3)


def test_a_claim_refused_for_a_newer_revision_is_skipped_unrecorded_and_names_that_revision() -> None:
    decision = policy.superseded("abc123")
    assert decision.reason == SkipReason.SUPERSEDED
    assert not decision.recorded  # recording would take the slot from the replicas on abc123
    assert "abc123" in decision.message
