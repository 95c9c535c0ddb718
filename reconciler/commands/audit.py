"""`reconciler audit`: per schedule, the commits that changed it (author, time, subject) and how.

Read from the ledger's audit trail, which the daemon writes for each applied revision
(service/audit.py); the same entries as the API's /api/v1/schedules/{name}/history.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from reconciler.commands.common import did_you_mean
from reconciler.commands.history import _since
from reconciler.errors import FatalError, UsageError
from reconciler.ledger.base import NoSuchLedger
from reconciler.service.audit import change_dict

_MARKS = {"add": "+", "change": "~", "remove": "-"}


def audit(name: str | None, since: str | None, ledger_path: str, fmt: str, limit: int = 1000,
          out: TextIO = sys.stdout, now: datetime | None = None) -> int:
    from reconciler.ledger import open_ledger

    if fmt not in ("text", "json"):
        raise UsageError("--format: choose text or json")
    since_at = _since(since, now or datetime.now(UTC)) if since else None
    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        records = ledger.audit(name, since=since_at, limit=limit)
        if name is not None and not records and since_at is None:
            known = {c.schedule for r in ledger.audit(limit=limit) for c in r.changes}
            raise FatalError(f"no change of a schedule named {name!r} in the ledger's audit trail"
                             f"{did_you_mean(name, known)}")
    finally:
        ledger.close()
    by_schedule: dict[str, list[dict[str, Any]]] = {}
    for r in records:  # newest first, and so within each schedule
        for change in r.changes:
            by_schedule.setdefault(change.schedule, []).append(change_dict(r, change))
    if fmt == "json":
        json.dump([{"schedule": n, "changes": by_schedule[n]} for n in sorted(by_schedule)], out, indent=2,
                  ensure_ascii=False)
        out.write("\n")
        return 0
    for schedule, changes in sorted(by_schedule.items()):
        out.write(f"{schedule}\n")
        for c in changes:
            out.write(f"  {_MARKS[c['action']]} {c['applied_at']}  {_who(c)}\n")
            for f in c["fields"]:
                out.write(f"      {f['path']}: {_value(f['old'])} -> {_value(f['new'])}\n")
    if not by_schedule:
        out.write("no changes recorded\n")
    return 0


def _who(c: dict[str, Any]) -> str:
    commit = c["commit"]
    if commit is None:
        return f"revision {c['revision']} (no commit)"
    return (f"{commit['sha'][:12]} {commit['author']} <{commit['email']}> at {commit['authored_at']}: "
            f"{json.dumps(commit['subject'], ensure_ascii=False)}")


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False) if v is not None else "(absent)"
