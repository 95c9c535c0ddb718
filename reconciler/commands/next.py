"""`reconciler next`: the next fire times of an expression or of a schedule in the directory."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from reconciler.commands.common import did_you_mean
from reconciler.core import cron, policy
from reconciler.core.describe import describe, local_text, relative, utc_text
from reconciler.core.loader import Loader, parse_timestamp, zone, zone_suggestion
from reconciler.core.model import Schedule
from reconciler.core.policy import Pause, skipped_by_pause
from reconciler.core.timing import Timing
from reconciler.errors import FatalError, UsageError


def next_times(
    name: str | None,
    expression: str | None,
    timezone: str,
    after: str | None,
    count: int,
    fmt: str,
    directory: str = "schedules",
    out: TextIO = sys.stdout,
    now: datetime | None = None,
    ledger_path: str | None = None,
) -> int:
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}: choose text or json")
    if (name is None) == (expression is None):
        raise UsageError("give either a schedule NAME or --cron EXPR")
    if count < 1:
        raise UsageError("-n must be at least 1")
    now = now or datetime.now(UTC)
    found = _schedule_of(name, directory, now) if name else None
    timing, enabled = (found.timing, found.enabled) if found else (_timing_for(expression or "", timezone), True)
    start = now
    if after is not None:
        try:
            start = parse_timestamp(after, timing.tz)
        except ValueError as e:
            raise UsageError(f"--after: {e}") from e
    slots = list(timing.slots(start, count))
    pause = _pause_of(name, ledger_path) if name and ledger_path else None
    skipped = [skipped_by_pause(pause, s) for s in slots]
    # What windows and calendars do to each slot ("skipped: calendar de-by-holidays (Christmas Day)").
    notes = [policy.slot_note(found, s) if found else "" for s in slots]
    if fmt == "json":
        data: dict[str, object] = {"next": [utc_text(s) for s in slots], "suspended": not enabled}
        if ledger_path is not None:  # the pauses are known only with --ledger
            data["skipped"] = [{"slot": utc_text(s), "why": why} for s, why in zip(slots, skipped, strict=True) if why]
        if any(notes):
            data["notes"] = notes
        json.dump(data, out)
        out.write("\n")
        return 0
    # A suspended schedule keeps its timing, so its times are shown, each marked: none of them will fire.
    head = "" if enabled else "  (suspended: enabled: false; none of these will fire)"
    out.write(f"{describe(timing)}  [{timing.tz.key}]{head}\n")
    for s, why, note in zip(slots, skipped, notes, strict=True):
        fire = timing.fire_time(s)
        jit = f"  (fires {utc_text(fire)} with jitter)" if fire != s else ""
        mark = "" if enabled else "  (suspended)"
        mark += f"  skipped: {why}" if why else ""
        said = f"  {note}" if note and not why else ""
        out.write(f"  {local_text(s, timing)}  {utc_text(s)}  {relative(s, now)}{jit}{mark}{said}\n")
    if not slots:
        out.write("  no further fire times\n")
    return 0


def _pause_of(name: str, ledger_path: str) -> Pause | None:
    """The schedule's pause in the ledger, if any (`--ledger`: what the operator paused)."""
    from reconciler.ledger import NoSuchLedger, open_ledger

    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        return ledger.pauses().get(name)
    finally:
        ledger.close()


def _timing_for(expression: str, timezone: str) -> Timing:
    tz = zone(timezone)
    if tz is None:
        meant = zone_suggestion(timezone)
        hint = f" (did you mean {meant!r}?)" if meant else ": use an IANA name such as Europe/Berlin or UTC"
        raise FatalError(f"unknown time zone {timezone!r}{hint}")
    try:
        parsed = cron.parse(expression)
    except cron.CronError as e:
        raise FatalError(f"invalid cron expression {expression!r}: {e}") from e
    return Timing(name="", tz=tz, cron=parsed)


def _schedule_of(name: str, directory: str, now: datetime) -> Schedule:
    result = Loader().load_paths([directory], now=now)
    for s in result.schedules:
        if s.name == name:
            return s
    for p in result.problems:
        if p.severity == "error":
            print(p.format_text(), file=sys.stderr)
    hint = did_you_mean(name, (s.name for s in result.schedules))
    raise FatalError(f"no valid schedule named {name!r} in {directory}{hint}")
