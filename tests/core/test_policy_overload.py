"""The policy of an overloaded or stopping runner: a slot never vanishes, it is recorded missed
with a reason that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Miss, Request, SkipReason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def schedule(deadline: str = "30s") -> Schedule:
    text = (f"name: job\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\n"
            f"policy: {{starting_deadline: {deadline}}}\n")
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return s


def test_the_reasons_are_the_texts_logs_and_messages_use() -> None:
    assert str(SkipReason.OVERLOAD) == "overload"
    assert str(SkipReason.SHUTDOWN) == "shutdown"


def test_a_slot_in_time_when_queued_and_late_when_a_worker_takes_it_is_missed_for_overload() -> None:
    fire = NOW - 31 * S
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire + S)
    assert isinstance(decision, Miss)
    assert decision.reason == SkipReason.OVERLOAD
    assert decision.message.startswith("overload: could not start within starting_deadline (late by 0:00:31")


def test_a_slot_already_late_when_the_runner_got_it_is_late_not_overload() -> None:
    fire = NOW - 40 * S
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire + 35 * S)
    assert decision == Miss(SkipReason.LATE, "could not start within starting_deadline (late by 0:00:40)")


def test_a_slot_that_waited_but_starts_within_its_deadline_is_claimed() -> None:
    fire = NOW - 29 * S
    assert isinstance(policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire), Claim)


def test_a_slot_arriving_at_a_full_backlog_is_missed_for_overload_and_says_the_bound() -> None:
    assert policy.overflow(500, 500) == Miss(SkipReason.OVERLOAD,
                                             "overload: 500 runs were already waiting to start (at most 500)")


@pytest.mark.parametrize("cause", [Cause.SCHEDULE, Cause.MANUAL, Cause.CATCHUP])
def test_a_slot_waiting_at_shutdown_is_recorded_missed(cause: Cause) -> None:
    decision = policy.shut_down(Request(cause, 1, NOW))
    assert decision is not None
    assert decision.reason == SkipReason.SHUTDOWN


def test_a_retry_waiting_at_shutdown_is_left_for_the_next_start_to_resume() -> None:
    assert policy.shut_down(Request(Cause.RETRY, 2, NOW)) is None
