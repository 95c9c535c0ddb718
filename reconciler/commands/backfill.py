"""`reconciler backfill`: run the past slots of [--from, --to) that have no run yet, in order.

Each slot runs as `backfill` under its own key (schedule, slot, attempt 1): the ledger's UNIQUE
claim means a slot that ran, or that a daemon or another backfill claims meanwhile, is never run
again. The run policy applies (pauses, concurrency, max_runs); --parallel raises the concurrency
within the backfill. Bounded: more than --max slots, or an end in the future, is refused.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from reconciler.commands.common import did_you_mean
from reconciler.commands.pause import who
from reconciler.core.describe import local_text, utc_text
from reconciler.core.pausing import parse_instant
from reconciler.core.policy import RunStatus
from reconciler.core.timing import Timing
from reconciler.engine.backfill import ACTED, BackfillRefused, Slot, plan, run
from reconciler.errors import EXIT_PROBLEMS, FatalError, UsageError
from reconciler.ledger.base import Action, NoSuchLedger


def backfill(name: str, start: str, end: str, *, dry_run: bool, parallel: int, max_slots: int, directory: str,
             ledger_path: str, fmt: str, out: TextIO = sys.stdout, now: datetime | None = None) -> int:
    from reconciler.core.loader import Loader
    from reconciler.engine.runner import Runner
    from reconciler.ledger import open_ledger
    from reconciler.service.log import make_log

    now = now or datetime.now(UTC)
    try:
        first, last = parse_instant(start, "--from"), parse_instant(end, "--to")
    except ValueError as e:
        raise UsageError(str(e)) from None
    if last <= first:
        raise UsageError("--to must be after --from")
    if parallel < 1 or max_slots < 1:
        raise UsageError("--parallel and --max must be at least 1")
    if last > now:
        raise UsageError(f"--to {end!r} is in the future: a backfill runs past slots only (now is {utc_text(now)})")
    found = {s.name: s for s in Loader().load_paths([directory]).schedules}
    if name not in found:
        raise FatalError(f"no valid schedule named {name!r} in {directory}{did_you_mean(name, found)}")
    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        try:
            planned = plan(ledger, found[name], first, last, now, max_slots)
        except BackfillRefused as e:
            raise FatalError(str(e)) from None
        if not dry_run and any(p.plan in ACTED for p in planned):
            applied = ledger.last_revision()
            runner = Runner(ledger, log=make_log("text"), clock=lambda: datetime.now(UTC), max_workers=1)
            runner.update(found, applied.revision if applied else "backfill")
            runner.start()  # a replica while the runs last: it keeps their leases
            ledger.record_activity(who(), Action.BACKFILL, [name], "", {
                "from": utc_text(first), "to": utc_text(last), "slots": sum(p.plan == "run" for p in planned)})
            try:
                run(ledger, name, planned, parallel, runner.backfill)
            finally:
                runner.shutdown(0)
    finally:
        ledger.close()
    _report(planned, fmt, dry_run, out, found[name].timing)
    # A calendar's recorded skip is what was asked for; a run that did not succeed is a problem.
    return EXIT_PROBLEMS if any(p.plan == "run" and p.status not in (None, RunStatus.SUCCEEDED)
                                for p in planned) else 0


def _report(planned: list[Slot], fmt: str, dry_run: bool, out: TextIO, timing: Timing) -> None:
    if fmt == "json":
        json.dump({"dry_run": dry_run, "slots": [p.as_dict() for p in planned]}, out, indent=2)
        out.write("\n")
        return
    # Calendars judge the local date: show it beside the UTC slot when the zone is not UTC.
    local = str(timing.tz) not in ("UTC", "Etc/UTC")
    for p in planned:
        if p.plan == "ran":
            text = f"already ran ({p.detail})"
        elif p.plan in ("paused", "skipped"):
            text = f"skipped: {p.detail}"
        elif p.plan in ("held", "taken"):
            text = f"not run: {p.detail}"
        elif p.run_id is None:
            text = "would run" + (f" ({p.detail})" if p.detail else "")
        else:
            text = f"run {p.run_id}: {p.status}" + (f" ({p.detail})" if p.detail else "")
        if p.plan == "skipped" and p.run_id is not None:
            text += f" (recorded as run {p.run_id})"
        out.write(f"{utc_text(p.slot)}  {local_text(p.slot, timing) + '  ' if local else ''}{text}\n")
    if not planned:
        out.write("no slot in that range\n")
