"""The replicas that share this ledger, as `GET /api/v1/replicas` shows them: read from the
ledger alone (every replica sees the same list), never changed from here."""

from __future__ import annotations

from typing import Any

from reconciler.core.describe import utc_text
from reconciler.ledger.base import Ledger, ReplicaRecord


def replicas(ledger: Ledger) -> dict[str, Any]:
    return {"replicas": [replica_dict(r) for r in ledger.replicas()]}


def replica_dict(r: ReplicaRecord) -> dict[str, Any]:
    age = r.heartbeat_age.total_seconds() if r.heartbeat_age is not None else None
    return {"id": r.id, "host": r.host, "pid": r.pid, "version": r.version, "revision": r.revision,
            "state": r.state, "started": utc_text(r.started), "last_heartbeat": utc_text(r.heartbeat),
            "heartbeat_age_seconds": round(age, 3) if age is not None else None,
            "lease_until": utc_text(r.lease_until), "stopped": utc_text(r.stopped) if r.stopped else None,
            "runs_owned": r.runs}
