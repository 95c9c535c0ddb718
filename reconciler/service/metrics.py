"""Prometheus metrics through prometheus_client, in a registry of the daemon's own (no globals).

Counters and histograms are updated as things happen; gauges that describe the current state
(schedules by state, problems, the applied revision) are computed at scrape time from the live
value (`gauges`), so they can never drift from it. So are the per-schedule gauges that alerts
need (last success, last status, next fire, failures in a row, paused) and each replica's
heartbeat age: read from the ledger at each scrape, in a few queries whatever the number of
schedules, so runs recorded by other replicas and by `reconciler trigger` count too.
docs/monitoring.md lists every metric; examples/monitoring/ alerts on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from reconciler.core.model import Schedule
from reconciler.core.policy import FAILING, Cause, Pause, ScheduleState, pause_active
from reconciler.ledger.base import Ledger, LedgerError, ReplicaRecord, RunRecord
from reconciler.service.live import Live

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600)
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60)
MEMORY_BUCKETS = tuple(float(2**n) for n in range(20, 37, 2))  # 1Mi .. 64Gi, by fours
CPU_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """`state` is read at each scrape (`gauges`); `replicas` too (every replica sharing the
    ledger); with a `ledger`, the per-schedule gauges are read from it too, their ages on `clock`."""

    def __init__(self, state: Callable[[], dict[str, Any]],
                 replicas: Callable[[], list[ReplicaRecord]] | None = None, ledger: Ledger | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
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
        # Why a slot was not claimed here: taken (another replica won it), superseded (a newer
        # revision changed the schedule), ledger_unreachable (fail closed), forbid, completed.
        self.refused = Counter("reconciler_claims_refused", "Slots this replica did not claim, by reason.",
                               ["reason"], registry=r)
        # What runs used, per schedule (runs whose kind measures it: commands).
        self.peak_memory = Histogram("reconciler_run_peak_memory_bytes", "Peak memory of finished runs.",
                                     ["schedule"], buckets=MEMORY_BUCKETS, registry=r)
        self.cpu = Histogram("reconciler_run_cpu_seconds", "CPU time of finished runs, by mode (user, system).",
                             ["schedule", "mode"], buckets=CPU_BUCKETS, registry=r)
        r.register(_StateCollector(state))
        if replicas is not None:
            r.register(_ReplicaCollector(replicas))
        if ledger is not None and clock is not None:
            r.register(_ScheduleCollector(state, ledger, clock))

    def observe_run(self, record: RunRecord) -> None:
        self.runs.labels(record.schedule, record.status).inc()
        if record.duration is not None:
            self.duration.labels(record.cause).observe(record.duration.total_seconds())
        if record.peak_memory is not None:
            self.peak_memory.labels(record.schedule).observe(record.peak_memory)
        for mode, seconds in (("user", record.cpu_user), ("system", record.cpu_system)):
            if seconds is not None:
                self.cpu.labels(record.schedule, mode).observe(seconds)
        if record.cause == Cause.SCHEDULE and record.started_at is not None:
            self.lateness.observe(max(0.0, (record.started_at - record.slot).total_seconds()))


def gauges(live: Live, running: int, waiting: int = 0, pauses: Mapping[str, Pause] | None = None,
           now: datetime | None = None, pools: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
    """The state gauges of one live value (taken once per scrape), the runs in progress, the
    slots waiting to start (the runner's backlog), the pauses in force at `now`, and each named
    pool's size, running runs (across replicas) and slots queued here."""
    st = live.status
    paused = [p for p in (pauses or {}).values() if now is not None and pause_active(p, now)]
    return {"paused": paused, "counts": live.counts(), "applied_revision": st.applied_revision,
            "attempted_revision": st.attempted_revision, "problems": len(st.problems), "ready": st.ready,
            "applied_at": st.applied_at.timestamp() if st.applied_at else None, "running": running,
            "waiting": waiting, "ledger_unreachable": st.ledger_unreachable is not None,
            "stale": st.superseded_by is not None,
            "rejected_at": st.attempted_at.timestamp() if st.rejected and st.attempted_at else None, "live": live,
            "pools": pools or {}}


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
        yield GaugeMetricFamily("reconciler_ledger_unreachable",
                                "1 while the ledger cannot be reached (nothing is claimed, nor run).",
                                value=int(s.get("ledger_unreachable", False)))
        yield GaugeMetricFamily("reconciler_revision_stale",
                                "1 when another replica applied a newer revision than this one.",
                                value=int(s.get("stale", False)))
        yield GaugeMetricFamily("reconciler_revision_rejected",
                                "1 while the newest revision seen is rejected and an older one runs.",
                                value=int(s["rejected_at"] is not None))
        if s["rejected_at"] is not None:
            yield GaugeMetricFamily("reconciler_revision_rejected_since_timestamp_seconds",
                                    "When the rejected revision was first seen (absent while none is).",
                                    value=s["rejected_at"])
        paused = GaugeMetricFamily("reconciler_schedule_paused_until_timestamp_seconds",
                                   "A paused schedule: when its pause ends (+Inf: until resumed).",
                                   labels=["schedule", "reason"])
        for p in s.get("paused", []):
            paused.add_metric([p.schedule, p.reason], p.until.timestamp() if p.until else float("inf"))
        yield paused
        pools = s.get("pools", {})
        for field, text in (("size", "A pool's size (pools.yaml): its runs at most running at once, across replicas."),
                            ("running", "A pool's runs running now, across every replica (read from the ledger)."),
                            ("queued", "Slots this replica has queued for room in a pool.")):
            family = GaugeMetricFamily(f"reconciler_pool_{field}", text, labels=["pool"])
            for name, p in sorted(pools.items()):
                if p.get(field, -1) >= 0:  # running is -1 while the ledger cannot be read: no sample
                    family.add_metric([name], p[field])
            yield family


class _ReplicaCollector(Collector):
    """Every replica sharing the ledger, read from it at scrape time (so every replica's /metrics
    shows all of them). A ledger that cannot be read yields no replica series, not an error."""

    def __init__(self, replicas: Callable[[], list[ReplicaRecord]]) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Any]:
        try:
            rows = self._replicas()
        except Exception:  # the ledger is unreachable: reconciler_ledger_unreachable says so
            rows = []
        by_state = GaugeMetricFamily("reconciler_replicas", "Replicas sharing the ledger, by state.",
                                     labels=["state"])
        counts = dict.fromkeys(("alive", "expired", "stopped"), 0)
        for r in rows:
            counts[r.state] += 1
        for state, n in counts.items():
            by_state.add_metric([state], n)
        yield by_state
        age = GaugeMetricFamily("reconciler_replica_heartbeat_age_seconds",
                                "Seconds since each replica's last heartbeat (the database's clock).",
                                labels=["replica", "host", "revision", "state"])
        owned = GaugeMetricFamily("reconciler_replica_runs_owned", "Running runs each replica owns.",
                                  labels=["replica"])
        for r in rows:
            seconds = r.heartbeat_age.total_seconds() if r.heartbeat_age is not None else 0.0
            age.add_metric([r.id, r.host, r.revision or "", r.state], seconds)
            owned.add_metric([r.id], r.runs)
        yield age
        yield owned


# How many slots ahead the expected interval looks: a weekday cron's weekend gap is among them.
_INTERVAL_SLOTS = 8


def expected_interval(s: Schedule, now: datetime) -> float | None:
    """The longest gap between the next slots (seconds): how long a healthy schedule may go
    without a run. None for a schedule with fewer than two slots left."""
    slots = list(s.timing.slots(now, _INTERVAL_SLOTS + 1))
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    return max(gaps, default=timedelta(0)).total_seconds() or None


class _ScheduleCollector(Collector):
    """Per schedule of the applied revision: what alerts are written on."""

    def __init__(self, state: Callable[[], dict[str, Any]], ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self._state, self._ledger, self._clock = state, ledger, clock
        self._intervals: dict[str, float | None] = {}  # spec hash -> expected interval, computed once

    def collect(self) -> Iterator[Any]:
        state = self._state()
        if state["ledger_unreachable"]:  # answered now from the live value, not after the ledger's timeouts
            return
        live: Live = state["live"]
        now = self._clock()
        nxt = live.next_fire_times()
        try:
            last, health = self._ledger.last_runs(), self._ledger.health(FAILING)
        except LedgerError:  # the ledger is unreachable: the live value's own gauges are still served
            return
        label = ["schedule"]
        success = GaugeMetricFamily("reconciler_schedule_last_success_timestamp_seconds",
                                    "When the schedule's newest succeeded run finished (absent: none yet).",
                                    labels=label)
        status = GaugeMetricFamily("reconciler_schedule_last_run_status",
                                   "1 for the status of the schedule's newest run (absent: no run yet).",
                                   labels=["schedule", "status"])
        fire = GaugeMetricFamily("reconciler_schedule_next_fire_timestamp_seconds",
                                 "When the schedule fires next (absent: suspended, completed or no slot left).",
                                 labels=label)
        failures = GaugeMetricFamily("reconciler_schedule_consecutive_failures",
                                     "Runs failed, timed out or abandoned since the newest success.", labels=label)
        paused = GaugeMetricFamily("reconciler_schedule_paused", "1 while an operator's pause holds the schedule.",
                                   labels=label)
        interval = GaugeMetricFamily("reconciler_schedule_expected_interval_seconds",
                                     "The longest gap between the schedule's next slots.", labels=label)
        intervals: dict[str, float | None] = {}
        held = {p.schedule for p in state["paused"]}
        for name in sorted(live.schedules):
            h, run, when = health.get(name), last.get(name), nxt.get(name)
            if h is not None and h.last_success is not None:
                success.add_metric([name], h.last_success.timestamp())
            if run is not None:
                status.add_metric([name, run.status], 1)
            if when is not None:
                fire.add_metric([name], when.timestamp())
            failures.add_metric([name], h.failures if h is not None else 0)
            paused.add_metric([name], int(name in held))
            key = live.hashes.get(name, name)
            if key not in self._intervals:
                self._intervals[key] = expected_interval(live.schedules[name], now)
            intervals[key] = gap = self._intervals[key]
            if gap is not None:
                interval.add_metric([name], gap)
        self._intervals = intervals  # forget the specs no longer applied
        yield from (success, status, fire, failures, paused, interval)
