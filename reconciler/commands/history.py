"""`reconciler history`: what ran, newest first; `--run ID` shows one run with its output."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from reconciler.commands.common import colour_enabled, did_you_mean, duration_arg, paint
from reconciler.core.describe import utc_text
from reconciler.core.durations import DurationError
from reconciler.core.policy import RUN_STATES, RunStatus
from reconciler.errors import FatalError, UsageError
from reconciler.ledger.base import Ledger, NoSuchLedger, RunRecord

# What a status looks like on a terminal: failures stand out, what did not run is quiet.
STATUS_COLOURS = {RunStatus.SUCCEEDED: "green", RunStatus.FAILED: "red", RunStatus.TIMED_OUT: "red",
                  RunStatus.ABANDONED: "red", RunStatus.INTERRUPTED: "yellow", RunStatus.CANCELLED: "yellow",
                  RunStatus.RUNNING: "blue", RunStatus.SKIPPED: "dim", RunStatus.MISSED: "yellow"}


def history(name: str | None, status: str | None, since: str | None, limit: int, ledger_path: str,
            fmt: str, run_id: int | None, out: TextIO = sys.stdout, now: datetime | None = None) -> int:
    from reconciler.ledger import open_ledger

    if fmt not in ("text", "json"):
        raise UsageError("--format: choose text or json")
    if status is not None and status not in RUN_STATES:
        raise UsageError(f"--status {status!r}: one of {', '.join(RUN_STATES)}")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    since_at = _since(since, now or datetime.now(UTC)) if since else None
    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        if run_id is not None:
            record = ledger.run(run_id)
            if record is None:
                raise FatalError(f"no run with id {run_id}")
            _one(record, fmt, out)
            return 0
        records = ledger.runs(name, status=RunStatus(status) if status else None, since=since_at, limit=limit)
        if name is not None and not records:
            _known(ledger, name)
    finally:
        ledger.close()
    if fmt == "json":
        json.dump([as_dict(r) for r in records], out, indent=2)
        out.write("\n")
        return 0
    colour = colour_enabled(out)
    out.write(paint(f"{'ID':>7}  {'SCHEDULE':<24} {'SLOT':<20} {'ATT':>3} {'TRIGGER':<8} {'STATUS':<11} "
                    f"{'DURATION':>9} {'EXIT':>4}  {'REVISION':<12}  REPLICA", "bold", colour) + "\n")
    for r in records:
        duration = f"{r.duration.total_seconds():.2f}s" if r.duration is not None else "-"
        code = r.exit_code if r.exit_code is not None else (r.http_status or "-")
        status = paint(r.status, STATUS_COLOURS.get(r.status), colour) + " " * max(0, 11 - len(r.status))
        out.write(f"{r.id:>7}  {r.schedule:<24} {utc_text(r.slot)[:19] + 'Z':<20} {r.attempt:>3} {r.cause:<8} "
                  f"{status} {duration:>9} {code!s:>4}  {r.revision[:12]:<12}  {r.owner or '-'}\n")
    if not records:
        out.write("no runs\n")
    return 0


def _known(ledger: Ledger, name: str) -> None:
    """A NAME the ledger has never seen (applied or run) is a mistake, not an empty history."""
    last = ledger.last_revision()
    known = set(ledger.last_runs()) | set(last.hashes if last else ())
    if name not in known:
        raise FatalError(f"no schedule named {name!r} in the ledger{did_you_mean(name, known)}")


def _since(text: str, now: datetime) -> datetime:
    try:
        return now - duration_arg(text)
    except DurationError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(f"--since {text!r}: a duration such as 1h or an RFC 3339 time") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def as_dict(r: RunRecord, with_output: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id, "schedule": r.schedule, "slot": utc_text(r.slot), "attempt": r.attempt, "trigger": r.cause,
        "status": r.status, "started_at": utc_text(r.started_at) if r.started_at else None,
        "finished_at": utc_text(r.finished_at) if r.finished_at else None, "exit_code": r.exit_code,
        "http_status": r.http_status, "error": r.error, "revision": r.revision, "replica": r.owner or None,
        "duration_seconds": r.duration.total_seconds() if r.duration is not None else None,
    }
    if with_output:
        out.update(usage(r))
        out["output"] = r.output
        out["output_dropped_bytes"] = r.output_dropped
    return out


def usage(r: RunRecord) -> dict[str, Any]:
    """What the run used (None where its kind does not measure it)."""
    return {"peak_memory_bytes": r.peak_memory, "cpu_user_seconds": r.cpu_user, "cpu_system_seconds": r.cpu_system}


def _one(r: RunRecord, fmt: str, out: TextIO) -> None:
    data = as_dict(r, with_output=True)
    if fmt == "json":
        json.dump(data, out, indent=2)
        out.write("\n")
        return
    for key, value in data.items():
        if key != "output":
            out.write(f"{key + ':':<22}{'' if value is None else value}\n")
    out.write("output:\n")
    out.write((r.output or "") + ("" if (r.output or "").endswith("\n") else "\n"))
