"""What `reconciler status` shows, as one value: the applied revision (and a rejected one), runs
by state, failing schedules, the replicas and the next fire times.

A running daemon answers it from its live value and the ledger (GET /api/v1/summary); without a
daemon, `reconciler status --ledger` builds it from the ledger alone: the applied revision is the
ledger's last, its schedules are rebuilt from their stored specs, and a rejected revision is not
known (only a daemon sees the directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.core import policy
from reconciler.core.describe import utc_text
from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.ledger.base import Ledger
from reconciler.service.live import Live
from reconciler.service.replicas import replica_dict

NEXT = 10  # next fire times shown


def of_daemon(live: Live, ledger: Ledger) -> dict[str, Any]:
    st = live.status
    rejected = ({"revision": st.attempted_revision, "since": _iso(st.attempted_at), "error": st.error,
                 "problems": len(st.problems)} if st.rejected else None)
    nxt = live.next_fire_times()
    upcoming = sorted((t, name) for name, t in nxt.items() if t is not None)[:NEXT]
    return {"source": "daemon",
            "applied": {"revision": st.applied_revision, "at": _iso(st.applied_at)},
            "rejected": rejected, "superseded_by": st.superseded_by,
            "ledger_unreachable": st.ledger_unreachable, "ready": st.serving,
            **_of_ledger(ledger),
            "next": [{"schedule": name, "at": utc_text(t)} for t, name in upcoming]}


def of_ledger(ledger: Ledger, now: datetime) -> dict[str, Any]:
    last = ledger.last_revision()
    schedules: Mapping[str, Schedule] = {}
    if last is not None:
        loader = Loader()
        built = {n: build_from_spec(spec, f"ledger:{last.revision}", loader, now)
                 for n, spec in last.specs(ledger).items()}
        schedules = {n: s for n, s in built.items() if s is not None}
    completed = _completed(ledger, schedules)
    upcoming = sorted((t, name) for name, s in schedules.items()
                      if s.enabled and name not in completed for t in s.timing.slots(now, 1))[:NEXT]
    return {"source": "ledger",
            "applied": {"revision": last.revision if last else None,
                        "at": utc_text(last.applied_at) if last else None},
            "rejected": None, "superseded_by": None, "ledger_unreachable": None, "ready": None,
            **_of_ledger(ledger),
            "next": [{"schedule": name, "at": utc_text(t)} for t, name in upcoming]}


def _of_ledger(ledger: Ledger) -> dict[str, Any]:
    counts = ledger.run_counts()
    failing = sorted((r for r in ledger.last_runs().values() if r.status in policy.FAILING),
                     key=lambda r: r.schedule)
    return {"runs": {state: counts.get(state, 0) for state in policy.RunStatus},
            "failing": [{"schedule": r.schedule, "status": r.status, "slot": utc_text(r.slot), "run_id": r.id,
                         "error": r.error, "replica": r.owner or None} for r in failing],
            "replicas": [replica_dict(r) for r in ledger.replicas()]}


def _completed(ledger: Ledger, schedules: Mapping[str, Schedule]) -> set[str]:
    capped = {n: s.policy.max_runs for n, s in schedules.items() if s.policy.max_runs is not None}
    return {n for n, cap in capped.items() if policy.completed(cap, ledger.started_count(n))}


def _iso(t: datetime | None) -> str | None:
    return utc_text(t) if t is not None else None
