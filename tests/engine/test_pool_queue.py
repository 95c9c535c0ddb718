"""engine/pools.py: the slots a reconciler keeps queued for room in a named pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core.policy import Cause, Request
from reconciler.engine.pools import PoolQueue, Waiting

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(q: PoolQueue, name: str, priority: int, second: int, pool: str = "db") -> Waiting:
    slot = T0 + timedelta(seconds=second)
    return q.make(pool, (-priority, slot), name, slot, Request(Cause.SCHEDULE, 1, slot), slot)


def test_the_head_is_the_highest_priority_then_the_earliest_slot_then_the_first_come() -> None:
    q = PoolQueue(100)
    for name, priority, second in (("low-early", 0, 0), ("high-late", 5, 9), ("high-early", 5, 1),
                                   ("high-early-again", 5, 1)):
        assert q.put(entry(q, name, priority, second))
    taken = []
    while (w := q.take("db")) is not None:
        taken.append(w.name)
        assert q.done(w)
    assert taken == ["high-early", "high-early-again", "high-late", "low-early"]


def test_one_offer_of_a_pool_is_in_flight_at_a_time_and_other_pools_are_not_held_up() -> None:
    q = PoolQueue(100)
    q.put(entry(q, "a", 0, 0))
    q.put(entry(q, "b", 0, 1))
    q.put(entry(q, "r", 0, 0, pool="reports"))
    first = q.take("db")
    assert first is not None
    assert q.take("db") is None  # the head is being offered: the next waits for its answer
    assert q.take("reports") is not None
    assert q.queued() == {"db": 2, "reports": 1}
    assert q.done(first)
    assert not q.done(first)  # once
    second = q.take("db")
    assert second is not None
    assert second.name == "b"


def test_the_queues_are_bounded_and_expire_and_drain_hand_back_what_they_held() -> None:
    q = PoolQueue(2)
    assert q.put(entry(q, "a", 0, 0))
    assert q.put(entry(q, "b", 0, 1))
    assert not q.put(entry(q, "c", 0, 2))
    late = q.expire(lambda w: w.name == "a")
    assert [w.name for w in late] == ["a"]
    assert q.queued() == {"db": 1}
    assert [w.name for w in q.drain()] == ["b"]
    assert q.pools() == []
