"""`reconciler pause` and `reconciler resume`: the operator's override, written to the ledger.

The ledger is the truth: every replica's runner reads the pauses (engine/pauses.py), so a pause
written here from any host holds every daemon that uses this ledger within a second. Schedules
are named, or chosen by label, among those of the revision the ledger applied last.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from reconciler.commands.common import did_you_mean
from reconciler.core import pausing
from reconciler.core.describe import utc_text
from reconciler.core.pausing import pause_dict
from reconciler.core.policy import Pause, pause_active
from reconciler.core.selectors import SelectorError, parse_selector
from reconciler.errors import FatalError, UsageError
from reconciler.ledger.base import Action, Ledger, NoSuchLedger


def pause_until(now: datetime, until: str | None, for_: str | None) -> datetime | None:
    try:
        return pausing.pause_until(now, until, for_)
    except ValueError as e:
        raise UsageError(str(e)) from None


def who() -> str:
    """The OS user who asks (the API records its token's name instead)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def chosen(ledger: Ledger, names: Sequence[str], selectors: Sequence[str]) -> list[str]:
    """The schedules named, or matching every `key=value`, among the revision applied last."""
    if bool(names) == bool(selectors):
        raise UsageError("name the schedules, or choose them with --selector key=value (not both)")
    last = ledger.last_revision()
    if last is None:
        raise FatalError("the ledger has no applied revision yet: start `reconciler run` with this ledger first")
    known = last.hashes
    if names:
        for name in names:
            if name not in known:
                raise FatalError(f"no schedule named {name!r} in the revision applied last "
                                 f"({last.revision}){did_you_mean(name, known)}")
        return list(dict.fromkeys(names))
    try:
        wanted = parse_selector(selectors)
    except SelectorError as e:
        raise UsageError(str(e)) from None
    specs = last.specs(ledger)
    found = sorted(n for n, spec in specs.items()
                   if all(str((spec.get("labels") or {}).get(k)) == v for k, v in wanted.items()))
    if not found:
        raise FatalError(f"no schedule of the revision applied last ({last.revision}) matches "
                         + " ".join(f"--selector {s}" for s in selectors))
    return found


def _line(p: Pause) -> str:
    text = f"{p.schedule}: paused by {p.by} at {utc_text(p.at)}"
    text += f" until {utc_text(p.until)}" if p.until is not None else " until resumed"
    return text + (f": {p.reason}" if p.reason else "")


def _open(ledger_path: str) -> Ledger:
    from reconciler.ledger import open_ledger

    try:
        return open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e


def pause(names: Sequence[str], selectors: Sequence[str], reason: str, until: str | None, for_: str | None,
          ledger_path: str, fmt: str, *, listing: bool = False, out: TextIO = sys.stdout,
          now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    ledger = _open(ledger_path)
    try:
        if listing:
            if names or selectors or until or for_ or reason:
                raise UsageError("--list takes no schedules and no other option")
            done = sorted((p for p in ledger.pauses().values() if pause_active(p, now)), key=lambda p: p.schedule)
        else:
            end = pause_until(now, until, for_)
            by = who()
            done = []
            for name in chosen(ledger, names, selectors):
                p = Pause(name, by, now, reason, end)
                ledger.pause(p)
                done.append(p)
            details: dict[str, Any] = {"until": utc_text(end) if end is not None else None}
            if selectors:
                details["selector"] = ",".join(selectors)
            ledger.record_activity(by, Action.BULK_PAUSE if selectors else Action.PAUSE,
                                   [p.schedule for p in done], reason, details)
    finally:
        ledger.close()
    if fmt == "json":
        json.dump([pause_dict(p, now) for p in done], out, indent=2)
        out.write("\n")
    else:
        for p in done:
            out.write(_line(p) + "\n")
        if listing and not done:
            out.write("no schedule is paused\n")
    return 0


def resume(names: Sequence[str], selectors: Sequence[str], ledger_path: str, fmt: str, *,
           out: TextIO = sys.stdout) -> int:
    ledger = _open(ledger_path)
    try:
        results = [(name, ledger.resume(name)) for name in chosen(ledger, names, selectors)]
        details: dict[str, Any] = {"were_paused": [name for name, p in results if p is not None]}
        if selectors:
            details["selector"] = ",".join(selectors)
        ledger.record_activity(who(), Action.BULK_RESUME if selectors else Action.RESUME,
                               [name for name, _ in results], "", details)
    finally:
        ledger.close()
    if fmt == "json":
        json.dump([{"schedule": name, "was_paused": p is not None} for name, p in results], out, indent=2)
        out.write("\n")
    else:
        for name, p in results:
            out.write(f"{name}: resumed\n" if p is not None else f"{name}: was not paused\n")
    return 0
