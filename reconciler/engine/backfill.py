"""A backfill: the past slots of [first, last) that have no run yet, planned then run in order.

Shared by `reconciler backfill` (its own runner, beside any daemon) and the API (the daemon's
runner). Each slot runs under its own key (schedule, slot, attempt 1), so the ledger's UNIQUE
claim keeps it from running twice, whoever else claims it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.core.describe import utc_text
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Request, Skip, SkipReason, backfill_note, decide
from reconciler.ledger.base import Ledger

DEFAULT_MAX = 1000
ACTED = ("run", "skipped")  # what the real backfill writes: runs, and a calendar's skips
_TICK = timedelta(microseconds=1)


class BackfillRefused(ValueError):
    """The request is out of bounds (the future, too many slots, an empty range)."""


@dataclass
class Slot:
    slot: datetime
    # run | ran | paused (left free) | skipped (a calendar: recorded as such) | held (left free: a
    # window, or a move to a business day still to come) | taken (claimed elsewhere meanwhile)
    plan: str
    detail: str = ""  # the status it had, why it does not run, or what a calendar did to it
    run_id: int | None = None
    status: str | None = None  # what the backfill's run ended as

    def as_dict(self) -> dict[str, Any]:
        return {"slot": utc_text(self.slot), "plan": self.plan, "detail": self.detail, "run_id": self.run_id,
                "status": self.status}


def plan(ledger: Ledger, s: Schedule, first: datetime, last: datetime, now: datetime,
         max_slots: int = DEFAULT_MAX) -> list[Slot]:
    """The slots of [first, last) and what happens to each; refuses the future and more than `max_slots`."""
    if last <= first:
        raise BackfillRefused("the end must be after the start")
    if last > now:
        raise BackfillRefused(f"the end {utc_text(last)} is in the future: a backfill runs past slots only "
                              f"(now is {utc_text(now)})")
    slots = [t for t in s.timing.slots(first - _TICK, max_slots + 1) if t < last]
    if len(slots) > max_slots:
        raise BackfillRefused(f"{s.name}: more than {max_slots} slots in [{utc_text(first)}, {utc_text(last)}): "
                              "narrow the range, or raise the maximum (--max) to run them all")
    taken = ledger.slot_runs(s.name, first, last)
    pause = ledger.pauses().get(s.name)
    out = []
    for t in slots:
        if t in taken:
            out.append(Slot(t, "ran", str(taken[t])))
            continue
        # The very decision the runner takes for the slot (docs/policy.md), so that the run does what this says.
        d = decide(s, Request(Cause.BACKFILL, 1, t), now, t, pause=pause)
        if isinstance(d, Claim):
            out.append(Slot(t, "run", backfill_note(s, t, now)))
        elif isinstance(d, Skip) and d.reason == SkipReason.PAUSED:
            out.append(Slot(t, "paused", d.message))
        elif isinstance(d, Skip) and d.recorded:
            out.append(Slot(t, "skipped", d.message))
        else:  # left free; the policy never defers nor misses a backfilled slot
            out.append(Slot(t, "held", d.message))
    return out


def run(ledger: Ledger, name: str, planned: list[Slot], parallel: int,
        backfill: Callable[[str, datetime, int], int | None]) -> None:
    """Run the planned slots through `backfill` (Runner.backfill), up to `parallel` at once, started
    in slot order; each Slot gets its run id and final status. A `skipped` slot is recorded so by
    the runner, as the daemon would have."""
    todo = [p for p in planned if p.plan in ACTED]

    def one(item: Slot) -> None:
        item.run_id = backfill(name, item.slot, parallel)
        record = ledger.run(item.run_id) if item.run_id is not None else None
        if record is None:
            item.plan, item.detail = "taken", "claimed elsewhere meanwhile, paused, or a window closed meanwhile"
        else:
            item.status = str(record.status)

    if todo:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="backfill") as pool:
            list(pool.map(one, todo))
