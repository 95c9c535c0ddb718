"""`reconciler backfill`: run the past slots of [--from, --to) that have no run yet, in order.

Each slot runs as `backfill` under its own key (schedule, slot, attempt 1): the ledger's UNIQUE
claim means a slot that ran, or that a daemon or another backfill claims meanwhile, is never run
again. The run policy applies (pauses, concurrency, max_runs); --parallel raises the concurrency
within the backfill. Bounded: more than --max slots, or an end in the future, is refused.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from reconciler.commands.common import did_you_mean
from reconciler.commands.pause import parse_instant
from reconciler.core.describe import utc_text
from reconciler.core.policy import RunStatus, pause_active, pause_message
from reconciler.errors import EXIT_PROBLEMS, FatalError, UsageError
from reconciler.ledger.base import NoSuchLedger

_TICK = timedelta(microseconds=1)


@dataclass
class Slot:
    slot: datetime
    plan: str  # run | ran | paused
    detail: str = ""  # the status it had, or why it does not run
    run_id: int | None = None
    status: str | None = None  # what the backfill's run ended as

    def as_dict(self) -> dict[str, Any]:
        return {"slot": utc_text(self.slot), "plan": self.plan, "detail": self.detail, "run_id": self.run_id,
                "status": self.status}


def backfill(name: str, start: str, end: str, *, dry_run: bool, parallel: int, max_slots: int, directory: str,
             ledger_path: str, fmt: str, out: TextIO = sys.stdout, now: datetime | None = None) -> int:
    from reconciler.core.loader import Loader
    from reconciler.ledger import open_ledger

    now = now or datetime.now(UTC)
    first, last = parse_instant(start, "--from"), parse_instant(end, "--to")
    if last <= first:
        raise UsageError("--to must be after --from")
    if last > now:
        raise UsageError(f"--to {end!r} is in the future: a backfill runs past slots only "
                         f"(now is {utc_text(now)})")
    if parallel < 1 or max_slots < 1:
        raise UsageError("--parallel and --max must be at least 1")
    found = {s.name: s for s in Loader().load_paths([directory]).schedules}
    if name not in found:
        raise FatalError(f"no valid schedule named {name!r} in {directory}{did_you_mean(name, found)}")
    s = found[name]
    slots = [t for t in s.timing.slots(first - _TICK, max_slots + 1) if t < last]
    if len(slots) > max_slots:
        raise FatalError(f"{name}: more than {max_slots} slots in [{utc_text(first)}, {utc_text(last)}): "
                         "narrow the range, or raise --max to run them all")
    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        taken = ledger.slot_runs(name, first, last)
        pause = ledger.pauses().get(name)
        planned = []
        for t in slots:
            if t in taken:
                planned.append(Slot(t, "ran", str(taken[t])))
            elif pause is not None and pause_active(pause, now):
                planned.append(Slot(t, "paused", pause_message(pause)))
            else:
                planned.append(Slot(t, "run"))
        if not dry_run:
            _run(ledger, found, name, [p for p in planned if p.plan == "run"], parallel)
    finally:
        ledger.close()
    _report(planned, fmt, dry_run, out)
    failed = any(p.status not in (None, RunStatus.SUCCEEDED) for p in planned)
    return EXIT_PROBLEMS if failed else 0


def _run(ledger: Any, found: dict[str, Any], name: str, todo: list[Slot], parallel: int) -> None:
    from reconciler.engine.runner import Runner
    from reconciler.service.log import make_log

    if not todo:
        return
    last = ledger.last_revision()
    runner = Runner(ledger, log=make_log("text"), clock=lambda: datetime.now(UTC), max_workers=1)
    runner.update(found, last.revision if last else "backfill")
    runner.start()  # a replica while the runs last: it keeps their leases

    def one(item: Slot) -> None:
        item.run_id = runner.backfill(name, item.slot, parallel=parallel)
        record = ledger.run(item.run_id) if item.run_id is not None else None
        if record is None:
            item.plan, item.detail = "taken", "claimed elsewhere meanwhile, or paused"
        else:
            item.status = str(record.status)

    try:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="backfill") as pool:
            list(pool.map(one, todo))  # submitted in slot order: with --parallel 1, run in order
    finally:
        runner.shutdown(0)


def _report(planned: list[Slot], fmt: str, dry_run: bool, out: TextIO) -> None:
    if fmt == "json":
        json.dump({"dry_run": dry_run, "slots": [p.as_dict() for p in planned]}, out, indent=2)
        out.write("\n")
        return
    for p in planned:
        if p.plan == "ran":
            text = f"already ran ({p.detail})"
        elif p.plan == "paused":
            text = f"skipped: {p.detail}"
        elif p.plan == "taken":
            text = f"not run: {p.detail}"
        elif p.run_id is None:
            text = "would run"
        else:
            text = f"run {p.run_id}: {p.status}"
        out.write(f"{utc_text(p.slot)}  {text}\n")
    if not planned:
        out.write("no slot in that range\n")
