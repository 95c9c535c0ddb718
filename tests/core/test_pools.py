"""Pools (issue 18): pools.yaml, and the policy of a slot that finds its pool full."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Miss, Queue, Request, SkipReason, pool_order, pool_wait
from reconciler.core.pools import parse_pools

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def schedule(policy_yaml: str = "{pool: db-heavy}") -> Schedule:
    text = f"name: job\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\npolicy: {policy_yaml}\n"
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return s


# ---- pools.yaml ----------------------------------------------------------------------------------------


def test_a_pools_file_gives_each_pool_its_size() -> None:
    pools, problems = parse_pools("pools.yaml", b"db-heavy: {size: 2}\nreports:\n  size: 1\n  description: slow\n")
    assert problems == ()
    assert pools is not None
    assert dict(pools.sizes) == {"db-heavy": 2, "reports": 1}


def test_an_empty_pools_file_has_no_pools() -> None:
    pools, problems = parse_pools("pools.yaml", b"# none yet\n")
    assert problems == ()
    assert pools is not None
    assert dict(pools.sizes) == {}


def test_a_bad_pools_file_is_refused_at_the_line_of_each_mistake() -> None:
    text = b"db-heavy: {size: 2}\nzero: {size: 0}\nBad_Name: {size: 1}\nnosize: {}\nodd: {size: 1, colour: red}\n"
    pools, problems = parse_pools("pools.yaml", text)
    assert pools is None
    assert [(p.line, p.message) for p in problems] == [
        (2, "pool 'zero': size must be an integer from 1 to 100000"),
        (3, "pool name 'Bad_Name': 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"),
        (4, "pool 'nosize': size is required (the runs of the pool at most running at once)"),
        (5, "pool 'odd': unknown field 'colour' (fields: size, description)"),
    ]
    assert all(p.path == "pools.yaml" for p in problems)


def test_a_pools_file_that_is_not_a_mapping_is_refused() -> None:
    pools, problems = parse_pools("pools.yaml", b"- db-heavy\n")
    assert pools is None
    assert problems[0].line == 1
    assert "mapping of pool names" in problems[0].message


def test_a_schedule_naming_an_unknown_pool_is_rejected_at_its_line(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "pools.yaml").write_text("db-heavy: {size: 2}\n")
    (root / "jobs.yaml").write_text("name: ok\nschedule: {every: 1m}\nrun: {command: [/bin/true]}\n"
                                    "policy: {pool: db-heavy}\n---\nname: wrong\nschedule: {every: 1m}\n"
                                    "run: {command: [/bin/true]}\npolicy: {pool: db-haevy}\n")
    loaded = Loader().load_paths([root], NOW)
    assert [s.name for s in loaded.schedules] == ["ok"]
    (problem,) = loaded.problems
    assert (problem.path.endswith("jobs.yaml"), problem.line, problem.pointer) == (True, 6, ("policy", "pool"))
    assert "pool 'db-haevy' cannot be used: " in problem.message
    assert "pools: db-heavy" in problem.message


def test_pool_and_priority_are_read_into_the_policy_with_priority_zero_by_default() -> None:
    assert (schedule().policy.pool, schedule().policy.priority) == ("db-heavy", 0)
    assert schedule("{pool: db-heavy, priority: 10}").policy.priority == 10


# ---- the policy ---------------------------------------------------------------------------------------


def test_a_slot_that_finds_its_pool_full_is_queued_within_its_starting_deadline() -> None:
    s = schedule("{pool: db-heavy, starting_deadline: 30s}")
    decision = pool_wait(s, Request(Cause.SCHEDULE, 1, NOW - 29 * S), NOW, since=NOW - 29 * S, size=2)
    assert decision == Queue(timedelta(milliseconds=500), NOW - 29 * S)


def test_a_queued_slot_past_its_starting_deadline_is_missed_with_reason_pool_naming_the_pool() -> None:
    s = schedule("{pool: db-heavy, starting_deadline: 30s}")
    decision = pool_wait(s, Request(Cause.SCHEDULE, 1, NOW - 31 * S), NOW, since=NOW - 30 * S, size=2)
    assert isinstance(decision, Miss)
    assert decision.reason == SkipReason.POOL
    assert decision.message.startswith("pool db-heavy: could not start within starting_deadline (late by 0:00:31)")
    assert "all 2 runs of pool 'db-heavy' were running" in decision.message


def test_a_catch_up_waits_for_room_from_when_it_first_found_none() -> None:
    s = schedule("{pool: db-heavy, starting_deadline: 30s}")
    old = Request(Cause.CATCHUP, 1, NOW - timedelta(hours=3))
    assert isinstance(pool_wait(s, old, NOW, since=NOW - 10 * S, size=1), Queue)
    assert isinstance(pool_wait(s, old, NOW, since=NOW - 31 * S, size=1), Miss)


def test_a_backfill_waits_for_room_however_long_it_takes() -> None:
    s = schedule("{pool: db-heavy, starting_deadline: 30s}")
    old = Request(Cause.BACKFILL, 1, NOW - timedelta(days=3))
    assert isinstance(pool_wait(s, old, NOW, since=NOW - timedelta(hours=1), size=1), Queue)


def test_queued_slots_start_by_priority_then_slot_time() -> None:
    low, high = schedule("{pool: db-heavy, priority: 1}"), schedule("{pool: db-heavy, priority: 10}")
    waiting = [(low, NOW - 5 * S), (high, NOW), (low, NOW - 9 * S), (high, NOW - 1 * S)]
    ordered = sorted(waiting, key=lambda w: pool_order(*w))
    assert [(w[0].policy.priority, w[1]) for w in ordered] == [
        (10, NOW - 1 * S), (10, NOW), (1, NOW - 9 * S), (1, NOW - 5 * S)]
