"""`reconciler activity [NAME]`: operators' actions recorded in the ledger, newest first: who (a
token's name through the API, the OS user for a command), when, what and why. The same records as
the API's /api/v1/activity."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from reconciler.core.describe import utc_text
from reconciler.errors import UsageError
from reconciler.ledger.base import NoSuchLedger
from reconciler.service.activity import activity_dict


def activity(name: str | None, ledger_path: str, fmt: str, limit: int = 50, out: TextIO = sys.stdout) -> int:
    from reconciler.ledger import open_ledger

    if fmt not in ("text", "json"):
        raise UsageError("--format: choose text or json")
    if limit < 1:
        raise UsageError(f"--limit {limit}: at least 1")
    try:
        ledger = open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        items = ledger.activity(name, limit=limit)
    finally:
        ledger.close()
    if fmt == "json":
        json.dump([activity_dict(a) for a in items], out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    for a in items:
        line = f"{utc_text(a.at)}  {a.who}  {a.action.value} {', '.join(a.targets)}"
        if a.reason:
            line += f": {json.dumps(a.reason, ensure_ascii=False)}"
        extra = {k: v for k, v in a.details.items() if v is not None}
        if extra:
            line += "  " + json.dumps(extra, ensure_ascii=False, sort_keys=True)
        out.write(line + "\n")
    if not items:
        out.write("no action recorded\n")
    return 0
