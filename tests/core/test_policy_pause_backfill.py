"""The pause and backfill rules of the run policy, as functions of values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Pause, Queue, Request, Skip, SkipReason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def schedule(policy_yaml: str = "{}") -> Schedule:
    text = f"name: job\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\npolicy: {policy_yaml}\n"
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return s


def paused(until: datetime | None = None, reason: str = "db migration") -> Pause:
    return Pause("job", "alice", NOW - HOUR, reason, until)


def test_a_paused_schedules_slot_is_skipped_and_recorded_with_who_and_why() -> None:
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, NOW), NOW, pause=paused())
    assert decision == Skip(SkipReason.PAUSED, "paused by alice: db migration")
    assert isinstance(decision, Skip)
    assert decision.recorded


def test_the_skip_message_names_the_expiry_of_a_timed_pause() -> None:
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, NOW), NOW, pause=paused(NOW + HOUR, ""))
    assert decision == Skip(SkipReason.PAUSED, "paused by alice (until 2026-03-01T13:00:00Z)")


def test_a_pause_whose_until_has_passed_holds_nothing_back() -> None:
    assert isinstance(policy.decide(schedule(), Request(Cause.SCHEDULE, 1, NOW), NOW, pause=paused(NOW)), Claim)
    assert not policy.pause_active(paused(NOW), NOW)
    assert policy.pause_active(paused(NOW + timedelta(microseconds=1)), NOW)
    assert not policy.pause_active(None, NOW)


def test_catch_up_runs_and_retries_of_a_paused_schedule_are_skipped_too() -> None:
    for cause, attempt in ((Cause.CATCHUP, 1), (Cause.RETRY, 2)):
        decision = policy.decide(schedule(), Request(cause, attempt, NOW), NOW, pause=paused())
        assert isinstance(decision, Skip)
        assert decision.reason == SkipReason.PAUSED
        assert decision.recorded


def test_a_manual_run_of_a_paused_schedule_runs_the_operator_asked() -> None:
    assert isinstance(policy.decide(schedule(), Request(Cause.MANUAL, 1, NOW), NOW, pause=paused()), Claim)


def test_a_backfill_of_a_paused_schedule_leaves_the_slot_free_for_later() -> None:
    decision = policy.decide(schedule(), Request(Cause.BACKFILL, 1, NOW - HOUR), NOW, pause=paused())
    assert isinstance(decision, Skip)
    assert decision.reason == SkipReason.PAUSED
    assert not decision.recorded


def test_a_backfilled_slot_is_never_late_and_counts_toward_max_runs() -> None:
    decision = policy.decide(schedule("{starting_deadline: 30s, max_runs: 5, concurrency: allow}"),
                             Request(Cause.BACKFILL, 1, NOW - 24 * HOUR), NOW)
    assert decision == Claim(exclusive=False, counted=True, max_runs=5, replace=False)


def test_a_backfill_of_a_forbid_schedule_is_exclusive_unless_parallel_raises_the_limit() -> None:
    s = schedule("{concurrency: forbid}")
    one = policy.decide(s, Request(Cause.BACKFILL, 1, NOW - HOUR), NOW)
    four = policy.decide(s, Request(Cause.BACKFILL, 1, NOW - HOUR), NOW, parallel=4)
    assert isinstance(one, Claim)
    assert one.exclusive
    assert isinstance(four, Claim)
    assert not four.exclusive


def test_a_backfill_never_replaces_a_running_run() -> None:
    decision = policy.decide(schedule("{concurrency: replace}"), Request(Cause.BACKFILL, 1, NOW - HOUR), NOW)
    assert isinstance(decision, Claim)
    assert not decision.replace


def test_a_backfill_held_by_a_running_run_waits_instead_of_recording_a_skip() -> None:
    s = schedule("{concurrency: forbid}")
    decision = policy.refused(s, Request(Cause.BACKFILL, 1, NOW - 24 * HOUR), NOW, started=0, blocked=True)
    assert decision == Queue(policy.RETRY_POLL, NOW - 24 * HOUR)


def test_backfilled_slots_do_not_move_the_catch_up_timeline() -> None:
    assert Cause.BACKFILL not in policy.TIMELINE


def test_upcoming_slots_before_a_pauses_end_are_shown_skipped_and_later_ones_not() -> None:
    p = paused(NOW + HOUR, "freeze")
    assert policy.skipped_by_pause(p, NOW + HOUR / 2) == "paused by alice: freeze (until 2026-03-01T13:00:00Z)"
    assert policy.skipped_by_pause(p, NOW + HOUR) is None
    assert policy.skipped_by_pause(None, NOW) is None


def test_a_backfill_slot_still_waiting_at_shutdown_is_left_free_not_recorded_missed() -> None:
    assert policy.shut_down(Request(Cause.BACKFILL, 1, NOW - HOUR)) is None
