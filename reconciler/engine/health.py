"""Whether the ledger answers: fail closed, and say so once.

Nothing runs without a claim, so while the ledger cannot be reached every slot is lost (never run
unclaimed). The runner and the heartbeat report each failure and each success here; observers
(the daemon: /readyz, the status, the log) hear of a change of state once, not of every slot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Observer = Callable[[str | None], None]


class LedgerHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._problem: str | None = None
        self.unclaimed = 0  # slots not run because the ledger could not be reached
        self.on_change: Observer | None = None  # told the problem when it starts, None when it ends

    @property
    def problem(self) -> str | None:
        return self._problem

    def failed(self, why: str, *, slot: bool = False) -> None:
        with self._lock:
            changed = self._problem is None
            self._problem = why
            if slot:
                self.unclaimed += 1
        if changed:
            self._tell(why)

    def ok(self) -> None:
        if self._problem is None:  # the common case: no lock
            return
        with self._lock:
            changed, self._problem = self._problem is not None, None
        if changed:
            self._tell(None)

    def _tell(self, problem: str | None) -> None:
        observer = self.on_change
        if observer is not None:
            observer(problem)
