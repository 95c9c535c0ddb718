"""The slots queued for room in a named pool (issue 18), one priority queue per pool.

The ledger's claim bounds a pool's running runs across replicas; this is what a reconciler keeps
meanwhile: the slots it found no room for, offered again in the policy's order (`pool_order`:
priority, then slot time) when one of its own runs of the pool ends, and on a short poll (a
run on another replica may have ended). One offer per pool is in flight at a time, so the head
of the queue is always asked first; it is bounded like the backlog.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.core.policy import Request


@dataclass(order=True)
class Waiting:
    """A slot queued for room in its pool."""

    key: tuple[int, datetime, int]  # (-priority, slot, arrival): the order it is offered in
    pool: str = field(compare=False)
    name: str = field(compare=False)
    slot: datetime = field(compare=False)
    request: Request = field(compare=False)
    since: datetime = field(compare=False)  # when it first found the pool full


class PoolQueue:
    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._heaps: dict[str, list[Waiting]] = {}
        self._offering: dict[str, Waiting] = {}  # pool -> the entry being offered now
        self._arrivals = itertools.count()
        self._lock = threading.Lock()

    def make(self, pool: str, order: tuple[int, datetime], name: str, slot: datetime, request: Request,
             since: datetime) -> Waiting:
        return Waiting((*order, next(self._arrivals)), pool, name, slot, request, since)

    def put(self, w: Waiting) -> bool:
        """Queue `w` (again); False when the queues hold `bound` slots already (not queued)."""
        with self._lock:
            if sum(len(h) for h in self._heaps.values()) >= self.bound:
                return False
            heapq.heappush(self._heaps.setdefault(w.pool, []), w)
            return True

    def take(self, pool: str) -> Waiting | None:
        """The head of the pool's queue, to offer now; None while another offer of the pool is in flight."""
        with self._lock:
            heap = self._heaps.get(pool)
            if pool in self._offering or not heap:
                return None
            w = heapq.heappop(heap)
            if not heap:
                del self._heaps[pool]
            self._offering[pool] = w
            return w

    def done(self, w: Waiting) -> bool:
        """The offer of `w` is over (claimed, refused, or queued again): True if it was still in flight."""
        with self._lock:
            if self._offering.get(w.pool) is not w:
                return False
            del self._offering[w.pool]
            return True

    def has(self, pool: str) -> bool:
        with self._lock:
            return bool(self._heaps.get(pool)) or pool in self._offering

    def pools(self) -> list[str]:
        with self._lock:
            return sorted(self._heaps)

    def queued(self) -> dict[str, int]:
        """Slots waiting for room, per pool (the one being offered counts as waiting)."""
        with self._lock:
            out = {p: len(h) for p, h in self._heaps.items()}
            for p in self._offering:
                out[p] = out.get(p, 0) + 1
            return out

    def expire(self, late: Callable[[Waiting], bool]) -> list[Waiting]:
        """Remove and return the entries `late` says are past waiting for."""
        with self._lock:
            out: list[Waiting] = []
            for pool in list(self._heaps):
                keep: list[Waiting] = []
                for w in self._heaps[pool]:
                    (out if late(w) else keep).append(w)
                if keep:
                    heapq.heapify(keep)
                    self._heaps[pool] = keep
                else:
                    del self._heaps[pool]
            return out

    def drain(self) -> list[Waiting]:
        with self._lock:
            out = [w for h in self._heaps.values() for w in h]
            self._heaps.clear()
            return out
