"""The policy of a reconciler whose room (--max-running) is full: a slot that cannot start for lack
of room is queued, runs if room frees within its starting_deadline, and is missed (pool) past it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Miss, Request, SkipReason
from reconciler.engine.runner import default_max_running

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def schedule(deadline: str = "30s") -> Schedule:
    text = (f"name: job\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\n"
            f"policy: {{starting_deadline: {deadline}}}\n")
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return s


def test_a_slot_queued_for_room_that_frees_within_the_deadline_runs() -> None:
    fire = NOW - 29 * S
    assert isinstance(policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire, full=4), Claim)


def test_a_slot_queued_for_room_past_its_deadline_is_missed_for_pool_naming_the_bound() -> None:
    fire = NOW - 31 * S
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire + S, full=4)
    assert isinstance(decision, Miss)
    assert decision.reason == SkipReason.POOL
    assert str(decision.reason) == "pool"
    assert decision.message.startswith("pool: could not start within starting_deadline (late by 0:00:31")
    assert "all 4 runs this reconciler runs at once (--max-running) were busy" in decision.message


def test_a_slot_that_was_late_before_it_was_queued_is_late_not_pool() -> None:
    fire = NOW - 40 * S
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire + 35 * S, full=4)
    assert isinstance(decision, Miss)
    assert decision.reason == SkipReason.LATE


def test_a_slot_that_waited_with_room_free_is_overload_not_pool() -> None:
    fire = NOW - 31 * S
    decision = policy.decide(schedule(), Request(Cause.SCHEDULE, 1, fire), NOW, queued_at=fire + S)
    assert isinstance(decision, Miss)
    assert decision.reason == SkipReason.OVERLOAD


def test_the_default_room_is_32_runs_per_cpu() -> None:
    assert [default_max_running(n) for n in (None, 1, 2, 8)] == [32, 32, 64, 256]
