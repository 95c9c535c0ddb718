"""What the API and the dashboard show: functions of one `Live` value and the ledger.

A caller takes the live value (and its next fire times) once per request and hands them in, so one
answer never mixes two revisions; nothing here knows the daemon. Lists are paged and filtered here,
over in-memory maps, so 10,000 schedules stay fast; runs come from the ledger's indexes, so that
runs recorded by another process (`reconciler trigger`, another replica) count as much as this
daemon's own. Nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from reconciler.core import policy
from reconciler.core.describe import describe, local_text, utc_text
from reconciler.core.model import Schedule
from reconciler.ledger.base import Ledger, RunRecord
from reconciler.service.live import Live

SORTS = ("name", "next", "last")


@dataclass(frozen=True)
class Query:
    q: str = ""
    label: str = ""  # key=value
    state: str = ""  # active | suspended | completed
    last_status: str = ""
    sort: str = "name"
    desc: bool = False
    limit: int = 50
    offset: int = 0


def iso(t: datetime | None) -> str | None:
    return utc_text(t) if t is not None else None


def run_dict(r: RunRecord, output: str | None = None) -> dict[str, Any]:
    out = {"id": r.id, "schedule": r.schedule, "slot": iso(r.slot), "attempt": r.attempt, "trigger": r.cause,
           "status": r.status, "revision": r.revision, "started_at": iso(r.started_at),
           "finished_at": iso(r.finished_at), "exit_code": r.exit_code, "http_status": r.http_status,
           "error": r.error, "duration_seconds": r.duration.total_seconds() if r.duration is not None else None,
           "replica": r.owner or None}
    if output is not None:
        # What the run used (limits): shown with one run, None where its kind does not measure it.
        out.update(peak_memory_bytes=r.peak_memory, cpu_user_seconds=r.cpu_user, cpu_system_seconds=r.cpu_system)
        out["output"] = output
        out["output_dropped_bytes"] = r.output_dropped
    return out


NextTimes = Mapping[str, datetime | None]


def status(live: Live, *, directory: str, read_only: bool, now: datetime) -> dict[str, Any]:
    st = live.status
    return {
        "ready": st.ready,
        "applied": {"revision": st.applied_revision, "at": iso(st.applied_at)},
        "attempted": {"revision": st.attempted_revision, "at": iso(st.attempted_at), "rejected": st.rejected,
                      "error": st.error,
                      "problems": [{"path": p.path, "line": p.line, "column": p.column, "pointer": p.jsonpath,
                                    "message": p.message} for p in st.problems]},
        "ledger_error": st.ledger_error,
        "ledger_unreachable": st.ledger_unreachable,
        "superseded_by": st.superseded_by,
        "directory": directory,
        "read_only": read_only,
        "now": iso(now),
    }


def overview(live: Live, ledger: Ledger, *, running: int, directory: str, read_only: bool,
             now: datetime, waiting: int = 0) -> dict[str, Any]:
    failures = sorted((r for status in policy.LISTED_FAILURES for r in ledger.runs(status=status, limit=10)),
                      key=lambda r: -r.id)[:10]
    return {"status": status(live, directory=directory, read_only=read_only, now=now), "counts": live.counts(),
            "total": len(live.schedules), "running": running, "waiting": waiting,
            "recent_failures": [run_dict(r) for r in failures]}


def last_runs(ledger: Ledger, names: Iterable[str] | None = None) -> dict[str, RunRecord]:
    """The newest run of each schedule in the ledger: of all in one query, or of a page's few by
    one indexed look-up each (far cheaper than all of 10,000)."""
    if names is None:
        return ledger.last_runs()
    found = ((name, ledger.runs(name, limit=1)) for name in names)
    return {name: newest[0] for name, newest in found if newest}


def active_pauses(ledger: Ledger, now: datetime) -> dict[str, policy.Pause]:
    """The pauses in force at `now`, by schedule (one query: a row per paused schedule)."""
    return {n: p for n, p in ledger.pauses().items() if policy.pause_active(p, now)}


def pause_view(p: policy.Pause | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"by": p.by, "at": iso(p.at), "reason": p.reason, "until": iso(p.until)}


def schedules(live: Live, ledger: Ledger, query: Query, now: datetime | None = None) -> dict[str, Any]:
    nxt = live.next_fire_times()
    paused = active_pauses(ledger, now or datetime.now(UTC))
    # Every schedule's last run only when the filter or the order needs it; a page's otherwise.
    last = last_runs(ledger) if query.last_status or query.sort == "last" else None
    rows = list(live.schedules.values())
    if query.q:
        needle = query.q.lower()
        rows = [s for s in rows if needle in s.name or needle in s.description.lower()]
    if query.label:
        label, _, value = query.label.partition("=")
        rows = [s for s in rows if s.labels_dict.get(label) == value]
    if query.state:
        rows = [s for s in rows if live.state_of(s, nxt) == query.state]
    if query.last_status and last is not None:
        rows = [s for s in rows if (s.name in last and last[s.name].status == query.last_status)
                or (query.last_status == "never" and s.name not in last)]
    far = datetime.max.replace(tzinfo=UTC)
    key: Any = {"name": lambda s: s.name,
                "next": lambda s: (nxt.get(s.name) or far, s.name),
                "last": lambda s: (last[s.name].id if last and s.name in last else 0, s.name)}[query.sort]
    rows.sort(key=key, reverse=query.desc)
    page = rows[query.offset:query.offset + query.limit]
    if last is None:
        last = last_runs(ledger, (s.name for s in page))
    return {"total": len(rows), "offset": query.offset, "limit": query.limit,
            "items": [summary(live, s, nxt, last.get(s.name), paused.get(s.name)) for s in page]}


def nxt_slot(s: Schedule, fire: datetime) -> datetime:
    """The slot of a next fire time (fire times carry jitter)."""
    return s.timing.next_slot(fire - s.timing.jitter - timedelta(microseconds=1)) or fire


def summary(live: Live, s: Schedule, nxt: NextTimes, last: RunRecord | None,
            pause: policy.Pause | None = None) -> dict[str, Any]:
    fire = nxt.get(s.name)
    return {
        "name": s.name, "description": s.description, "labels": s.labels_dict, "enabled": s.enabled,
        "state": live.state_of(s, nxt), "schedule": _when(s), "kind": "after" if s.deps.after else s.timing.kind,
        "expression": s.timing.cron.source if s.timing.cron else None, "timezone": s.timing.tz.key,
        "next": iso(fire), "next_local": local_text(fire, s.timing) if fire else None,
        "next_note": (policy.slot_note(s, nxt_slot(s, fire)) or None) if fire and not s.rules.empty else None,
        "last_run": run_dict(last) if last else None,
        "source": f"{s.source.path}:{s.source.line}",
        "paused": pause_view(pause),
    }


def schedule(live: Live, ledger: Ledger, name: str, *, now: datetime, runs: int = 50) -> dict[str, Any] | None:
    s = live.schedules.get(name)
    if s is None:
        return None
    nxt = live.next_fire_times()
    upcoming = list(s.timing.slots(now, 5)) if live.state_of(s, nxt) == policy.ScheduleState.ACTIVE else []
    recent = ledger.runs(name, limit=runs)
    pause = active_pauses(ledger, now).get(name)
    return {**summary(live, s, nxt, recent[0] if recent else None, pause),
            "spec_yaml": yaml.safe_dump(s.spec, sort_keys=False, allow_unicode=True),
            "upcoming": [{"slot": iso(t), "fires": iso(s.timing.fire_time(t)), "local": local_text(t, s.timing),
                          "skipped": policy.skipped_by_pause(pause, t),
                          # what windows and calendars do to it ("skipped: calendar de-by-holidays (...)")
                          "note": policy.slot_note(s, t) or None}
                         for t in upcoming],
            "runs": [run_dict(r) for r in recent],
            # Dependencies (issue 18): whom it follows or waits for, and who follows or waits for it.
            "upstreams": list(s.deps.upstreams),
            "downstreams": sorted(n for n, o in live.schedules.items() if name in o.deps.upstreams)}


def _when(s: Schedule) -> str:
    if s.deps.after:
        return f"after {', '.join(s.deps.after)} (on {s.deps.on}{', all' if s.deps.all else ''})"
    return describe(s.timing)


def runs(ledger: Ledger, schedule: str | None, status: str | None, limit: int, before: int | None) -> dict[str, Any]:
    items = ledger.runs(schedule, status=policy.RunStatus(status) if status else None, limit=limit,
                        before_id=before)
    return {"items": [run_dict(r) for r in items],
            "next_before": items[-1].id if len(items) == limit else None}


def run(ledger: Ledger, run_id: int) -> dict[str, Any] | None:
    r = ledger.run(run_id)
    return run_dict(r, output=r.output or "") if r else None
