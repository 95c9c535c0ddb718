"""Execution windows, as Argo CD's sync windows: a window opens at each fire time of its cron (in
its zone, by the same DST rules as a schedule's cron; or at each step of an `every`) and stays
open for its duration.

- no window at all: always allowed;
- with any allow window, an instant is allowed only inside an open allow window;
- an open deny window beats an open allow window.

Pure: values in, values out. A window is open on [opening, opening + duration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from reconciler.core.timing import Timing

Kind = Literal["allow", "deny"]
_TICK = timedelta(microseconds=1)
_MAX_STEPS = 10_000  # window changes looked at while searching for an allowed instant


@dataclass(frozen=True, slots=True)
class Window:
    kind: Kind
    openings: Timing  # its cron (or `every`) in its zone: when it opens
    duration: timedelta
    label: str  # how messages name it: a shared file's name, or "deny window 0 18 24 12 * for 48h"

    def is_open(self, at: datetime) -> bool:
        first = self.openings.next_slot(at - self.duration)
        return first is not None and first <= at

    def closes(self, at: datetime) -> datetime | None:
        """When the earliest opening still open at `at` closes, or None when the window is closed.
        A later, overlapping opening may keep it open past that: callers look again from there
        (one step per opening, instead of walking every opening of a long window at once)."""
        first = self.openings.next_slot(at - self.duration)
        return None if first is None or first > at else first + self.duration


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    why: str  # "" when allowed


def judge(windows: tuple[Window, ...], at: datetime) -> Verdict:
    """Is `at` allowed by these windows? (Argo's rules, above.)"""
    if not windows:
        return Verdict(True, "")
    for w in windows:
        if w.kind == "deny" and w.is_open(at):
            return Verdict(False, f"inside {w.label}")
    allows = [w for w in windows if w.kind == "allow"]
    if not allows or any(w.is_open(at) for w in allows):
        return Verdict(True, "")
    names = ", ".join(w.label for w in allows)
    return Verdict(False, f"outside every allow window ({names})")


def next_allowed(windows: tuple[Window, ...], at: datetime, until: datetime) -> datetime | None:
    """The first instant in [at, until] that the windows allow, or None."""
    t = at
    for _ in range(_MAX_STEPS):
        if t > until:
            return None
        if judge(windows, t).allowed:
            return t
        # The next instant anything could change for the better: an open deny closes, an allow opens.
        candidates = []
        for w in windows:
            if w.kind == "deny":
                end = w.closes(t)
                if end is not None:
                    candidates.append(end)
            else:
                nxt = w.openings.next_slot(t)
                if nxt is not None:
                    candidates.append(nxt)
        if not candidates:
            return None
        t = max(min(candidates), t + _TICK)
    return None
