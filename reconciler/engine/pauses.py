"""The ledger's pauses, as the runner asks about them once per slot.

The ledger is the truth (any replica, or `reconciler pause` from a laptop, writes it), but a query
per slot would add a round trip to every fire: the whole table (a row per paused schedule) is read
at most once per `ttl`, so a pause takes effect on every replica within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from reconciler.core.policy import Pause
from reconciler.ledger.base import Ledger

# How stale a replica's view of the pauses may be.
PAUSES_TTL = timedelta(seconds=1)


class Pauses:
    def __init__(self, ledger: Ledger, *, clock: Callable[[], datetime], log: Callable[..., None],
                 ttl: timedelta = PAUSES_TTL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ledger, self._clock, self._log, self._monotonic = ledger, clock, log, monotonic
        self._ttl = ttl.total_seconds()
        self._lock = threading.Lock()
        self._pauses: dict[str, Pause] = {}
        self._read_at: float | None = None
        self._unreadable = False  # said once per outage, not once a second

    def get(self, name: str) -> Pause | None:
        """The schedule's pause, active or expired (the policy decides which), as of at most `ttl` ago."""
        return self.all().get(name)

    def all(self) -> dict[str, Pause]:
        with self._lock:
            now = self._monotonic()
            if self._read_at is None or now - self._read_at >= self._ttl:
                try:
                    self._pauses = self._ledger.pauses()
                    self._unreadable = False
                except Exception as e:  # a ledger that cannot be read keeps the last view
                    if not self._unreadable:
                        self._log("pauses.unreadable", error=f"{type(e).__name__}: {e}")
                    self._unreadable = True
                self._read_at = now
            return self._pauses

    def cached(self) -> dict[str, Pause]:
        """The last view, without reading the ledger nor waiting for a reader that does (a /metrics
        scrape must not wait for a ledger that is down): the dict is replaced whole, never changed."""
        return self._pauses

    def forget(self) -> None:
        """Read the ledger at the next question (after this process paused or resumed a schedule)."""
        with self._lock:
            self._read_at = None
