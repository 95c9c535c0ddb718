"""`reconciler status`: the applied revision (and a rejected one), runs by state, failing schedules,
the replicas and the next fire times; from a running daemon (`--server`, which wins over a ledger
named by RECONCILER_LEDGER) or from the ledger."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any, TextIO

from reconciler.commands.common import colour_enabled, paint
from reconciler.errors import FatalError, UsageError
from reconciler.ledger.base import NoSuchLedger

REPLICA_COLOURS = {"alive": "green", "expired": "red", "stopped": "dim"}


def status(server: str | None, ledger_path: str | None, fmt: str, out: TextIO = sys.stdout,
           now: datetime | None = None) -> int:
    if fmt not in ("text", "json"):
        raise UsageError("--format: choose text or json")
    data = _from_server(server) if server else _from_ledger(ledger_path or ".reconciler/ledger.db",
                                                            now or datetime.now(UTC))
    if fmt == "json":
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        _text(data, out)
    return 0


def _from_server(server: str) -> dict[str, Any]:
    url = server.rstrip("/") + "/api/v1/summary"
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {server!r}: give the daemon's URL, e.g. http://127.0.0.1:8080")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise FatalError(f"{url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FatalError(f"{url}: {getattr(e, 'reason', None) or e}") from None
    return data


def _from_ledger(location: str, now: datetime) -> dict[str, Any]:
    from reconciler.ledger import open_ledger
    from reconciler.service.summary import of_ledger

    try:
        ledger = open_ledger(location, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e
    try:
        return of_ledger(ledger, now)
    finally:
        ledger.close()


def _text(data: dict[str, Any], out: TextIO) -> None:
    colour = colour_enabled(out)
    applied = data["applied"]
    out.write(f"applied revision: {applied['revision'] or '(none)'}"
              f"{'  at ' + applied['at'] if applied['at'] else ''}\n")
    rejected = data.get("rejected")
    if rejected:
        out.write(paint(f"rejected revision: {rejected['revision']} since {rejected['since']}: {rejected['error']}",
                        "red", colour) + "\n")
    if data.get("superseded_by"):
        out.write(paint(f"stale: a newer revision ({data['superseded_by']}) was applied by another replica",
                        "yellow", colour) + "\n")
    if data.get("ledger_unreachable"):
        out.write(paint(f"ledger unreachable: {data['ledger_unreachable']}", "red", colour) + "\n")
    counts = "  ".join(f"{state} {n}" for state, n in data["runs"].items() if n)
    out.write(f"runs: {counts or 'none'}\n")
    failing = data["failing"]
    out.write(f"failing schedules: {len(failing)}\n")
    for f in failing:
        out.write(f"  {f['schedule']:<24} {f['status']:<10} {f['slot']}  run {f['run_id']}"
                  f"{'  on ' + f['replica'] if f['replica'] else ''}  {f['error'] or ''}\n".rstrip() + "\n")
    replicas = data["replicas"]
    out.write(f"replicas: {sum(r['state'] == 'alive' for r in replicas)} alive of {len(replicas)}\n")
    for r in replicas:
        age = r.get("heartbeat_age_seconds")
        beat = f"{age:.1f}s ago" if age is not None else r["last_heartbeat"]
        state = paint(f"{r['state']:<8}", REPLICA_COLOURS.get(r["state"]), colour)
        out.write(f"  {r['id']:<32} {state} heartbeat {beat:<10} revision {(r['revision'] or '-')[:12]:<12} "
                  f"runs {r['runs_owned']}\n")
    nxt = data["next"]
    out.write("next fires:\n" if nxt else "next fires: none\n")
    for n in nxt:
        out.write(f"  {n['at']}  {n['schedule']}\n")
