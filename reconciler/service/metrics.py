"""Prometheus metrics through prometheus_client, in a registry of the daemon's own (no globals).

Counters and histograms are updated as things happen; gauges that describe the current state
(schedules by state, problems, the applied revision) are computed at scrape time from the live
value (`gauges`), so they can never drift from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from reconciler.core.policy import Cause, Pause, ScheduleState, pause_active
from reconciler.ledger.base import RunRecord
from reconciler.service.live import Live

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600)
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60)


class Metrics:
    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("reconciler_runs", "Recorded runs by schedule and final status.",
                            ["schedule", "status"], registry=r)
        self.duration = Histogram("reconciler_run_duration_seconds", "Duration of finished runs.",
                                  ["trigger"], buckets=DURATION_BUCKETS, registry=r)
        self.lateness = Histogram("reconciler_fire_lateness_seconds",
                                  "Start of a scheduled run minus its slot (jitter excluded).",
                                  buckets=LATENESS_BUCKETS, registry=r)
        self.reconcile = Histogram("reconciler_reconcile_duration_seconds", "Time to apply one revision.",
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                   registry=r)
        self.notifications = Counter("reconciler_notifications", "Webhook notifications by result.",
                                     ["result"], registry=r)
        r.register(_StateCollector(state))

    def observe_run(self, record: RunRecord) -> None:
        self.runs.labels(record.schedule, record.status).inc()
        if record.duration is not None:
            self.duration.labels(record.cause).observe(record.duration.total_seconds())
        if record.cause == Cause.SCHEDULE and record.started_at is not None:
            self.lateness.observe(max(0.0, (record.started_at - record.slot).total_seconds()))


def gauges(live: Live, running: int, waiting: int = 0, pauses: Mapping[str, Pause] | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """The state gauges of one live value (taken once per scrape), the runs in progress, the
    slots waiting to start (the runner's backlog) and the pauses in force at `now`."""
    st = live.status
    paused = [p for p in (pauses or {}).values() if now is not None and pause_active(p, now)]
    return {"paused": paused, "counts": live.counts(), "applied_revision": st.applied_revision,
            "attempted_revision": st.attempted_revision, "problems": len(st.problems), "ready": st.ready,
            "applied_at": st.applied_at.timestamp() if st.applied_at else None, "running": running,
            "waiting": waiting}


class _StateCollector(Collector):
    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        s = self._state()
        by_state = GaugeMetricFamily("reconciler_schedules", "Schedules by state.", labels=["state"])
        for name in ScheduleState:
            by_state.add_metric([name], s["counts"].get(name, 0))
        yield by_state
        info = InfoMetricFamily("reconciler_revision", "The applied revision.")
        info.add_metric([], {"revision": s["applied_revision"] or "", "attempted": s["attempted_revision"] or ""})
        yield info
        yield GaugeMetricFamily("reconciler_config_problems", "Problems in the latest attempted revision.",
                                value=s["problems"])
        yield GaugeMetricFamily("reconciler_ready", "1 once the first revision is applied.", value=int(s["ready"]))
        yield GaugeMetricFamily("reconciler_last_successful_reconcile_timestamp_seconds",
                                "When a revision was last applied.", value=s["applied_at"] or 0)
        yield GaugeMetricFamily("reconciler_runs_in_progress", "Runs executing now.", value=s["running"])
        yield GaugeMetricFamily("reconciler_runs_waiting", "Slots waiting for a worker to start them (the backlog).",
                                value=s["waiting"])
        paused = GaugeMetricFamily("reconciler_schedule_paused_until_timestamp_seconds",
                                   "A paused schedule: when its pause ends (+Inf: until resumed).",
                                   labels=["schedule", "reason"])
        for p in s.get("paused", []):
            paused.add_metric([p.schedule, p.reason], p.until.timestamp() if p.until else float("inf"))
        yield paused
