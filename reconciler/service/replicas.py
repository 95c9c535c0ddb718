"""The replicas that share this ledger, as `GET /api/v1/replicas` shows them: read from the
ledger alone (every replica sees the same list), never changed from here."""

from __future__ import annotations

from typing import Any

from reconciler.core.describe import utc_text
from reconciler.ledger.base import Ledger, ReplicaRecord


def state(r: ReplicaRecord) -> str:
    """alive: heartbeating; stopped: deregistered at a clean stop; expired: it stopped heartbeating
    (killed, or cut off from the ledger), so its runs are abandoned as their leases expire."""
    return "alive" if r.alive else "stopped" if r.stopped is not None else "expired"


def replicas(ledger: Ledger) -> dict[str, Any]:
    return {"replicas": [
        {"id": r.id, "host": r.host, "pid": r.pid, "version": r.version, "revision": r.revision,
         "state": state(r), "started": utc_text(r.started), "last_heartbeat": utc_text(r.heartbeat),
         "lease_until": utc_text(r.lease_until), "stopped": utc_text(r.stopped) if r.stopped else None,
         "runs_owned": r.runs}
        for r in ledger.replicas()]}
