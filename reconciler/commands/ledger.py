"""`reconciler ledger copy SRC DST`: move a ledger between SQLite and PostgreSQL (or between two of
either). Runs (with their pools), revisions with their specs, max_runs counters, operators' pauses,
the audit trail and the activity list are copied as they are (ids, instants, output bytes);
replicas are not, since they are the source's processes, not history.

It refuses a destination that holds anything (a copy never merges into a used ledger: ids and
slots would collide, and which history is true could not be told) and a source or destination on
which a replica is alive (a daemon still writing would be missing from the copy, or mixed into
it). The copy is one snapshot of the source and one transaction on the destination.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from reconciler.errors import FatalError, UsageError
from reconciler.ledger.base import Ledger, NoSuchLedger


def copy(source: str, destination: str, fmt: str = "text", out: TextIO = sys.stdout) -> int:
    from reconciler.ledger import open_ledger

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}: choose text or json")
    shown_src, shown_dst = shown(source), shown(destination)
    if _same(source, destination):
        raise UsageError(f"{shown_src}: the source and the destination are the same ledger")
    try:
        src = open_ledger(source, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        _refuse_live(src, shown_src, "source")
        dst = open_ledger(destination)
        try:
            _refuse_live(dst, shown_dst, "destination")
            copied = dst.load(src.dump())
            running = len(dst.open_runs())
        finally:
            dst.close()
    finally:
        src.close()
    counts = {"revisions": copied.revisions, "specs": copied.specs, "counters": copied.counters,
              "runs": copied.runs, "running": running, "pauses": copied.pauses, "audit": copied.audits,
              "activity": copied.actions}
    if fmt == "json":
        json.dump({"source": shown_src, "destination": shown_dst, **counts}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"copied {shown_src} to {shown_dst}: {copied.runs} runs, {copied.revisions} revisions, "
              f"{copied.specs} specs, {copied.counters} max_runs counters, {copied.pauses} pauses, "
              f"{copied.audits} audit records, {copied.actions} actions\n")
    if running:
        out.write(f"{running} run(s) were still marked running, by reconcilers that are gone: the first "
                  "reconciler on the destination ends them `abandoned` once their leases expire\n")
    return 0


def shown(location: str) -> str:
    """A ledger as messages name it: a URL without its password."""
    parts = urlsplit(location)
    if parts.scheme not in ("postgres", "postgresql"):
        return location
    query = "" if "password" in parts.query.lower() else parts.query
    if parts.password is None:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}@{host}{port}" if user else f"{host}{port}", parts.path, query, ""))


def _same(a: str, b: str) -> bool:
    from pathlib import Path

    from reconciler.ledger import is_url

    if is_url(a) or is_url(b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()


def _refuse_live(ledger: Ledger, name: str, which: str) -> None:
    live = [r for r in ledger.replicas() if r.alive]
    if live:
        who = ", ".join(f"{r.host} pid {r.pid}" for r in live)
        raise FatalError(f"{name}: {len(live)} reconciler(s) still use the {which} ({who}); stop them first "
                         "(a copy must not miss or mix in what they write), or wait until their leases expire")
