"""The metrics alerts are written on, in-process: a hand-made live value, a real SQLite ledger and an
injected clock, read back through prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.core.problems import Problem
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from reconciler.service.live import Live, Status
from reconciler.service.metrics import Metrics, gauges

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NEXT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def schedule(name: str, timing: dict[str, Any] | None = None, **fields: Any) -> Schedule:
    spec = {"name": name, "schedule": timing or {"cron": "0 2 * * *"}, "run": {"command": ["/bin/true"]}, **fields}
    built = build_from_spec(spec, f"{name}.yaml", Loader(), NOW)
    assert built is not None
    return built


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def live_value(**status: Any) -> Live:
    schedules = {"nightly": schedule("nightly"), "weekdays": schedule("weekdays", {"cron": "0 6 * * 1-5"}),
                 "often": schedule("often", {"every": "90s"}), "held": schedule("held", enabled=False)}
    return Live(status=Status(**{"applied_revision": "r1", "applied_at": NOW, "attempted_revision": "r1",
                                 "attempted_at": NOW, "ready": True, **status}),
                schedules=schedules, hashes={n: s.spec_hash for n, s in schedules.items()},
                next_fire_times=lambda: {"nightly": NEXT, "weekdays": NEXT, "often": NOW, "held": None})


def scrape(live: Live, ledger: Ledger, now: datetime = NOW) -> Samples:
    metrics = Metrics(lambda: gauges(live, 0), ledger.replicas, ledger=ledger, clock=lambda: now)
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def ended(ledger: Ledger, name: str, minutes_ago: int, status: RunStatus) -> None:
    slot = NOW - timedelta(minutes=minutes_ago)
    assert ledger.record(name, slot, attempt=1, cause=Cause.SCHEDULE, revision="r1",
                         outcome=Outcome(status, slot + timedelta(seconds=3)), started_at=slot) is not None


def one(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_each_schedule_shows_its_last_success_last_status_and_failures_in_a_row(ledger: Ledger) -> None:
    ended(ledger, "nightly", 30, RunStatus.SUCCEEDED)
    ended(ledger, "nightly", 20, RunStatus.FAILED)
    ended(ledger, "nightly", 10, RunStatus.TIMED_OUT)
    ended(ledger, "often", 5, RunStatus.SUCCEEDED)
    ended(ledger, "removed-long-ago", 5, RunStatus.FAILED)  # not in the applied revision: no series
    s = scrape(live_value(), ledger)
    last_ok = (NOW - timedelta(minutes=30, seconds=-3)).timestamp()
    assert one(s, "reconciler_schedule_last_success_timestamp_seconds", schedule="nightly") == last_ok
    assert one(s, "reconciler_schedule_consecutive_failures", schedule="nightly") == 2
    assert one(s, "reconciler_schedule_last_run_status", schedule="nightly", status="timed_out") == 1
    assert one(s, "reconciler_schedule_last_run_status", schedule="nightly", status="succeeded") is None
    assert one(s, "reconciler_schedule_consecutive_failures", schedule="often") == 0
    assert one(s, "reconciler_schedule_last_run_status", schedule="often", status="succeeded") == 1
    # Never ran: no last success or status, and no failures.
    assert one(s, "reconciler_schedule_last_success_timestamp_seconds", schedule="weekdays") is None
    assert one(s, "reconciler_schedule_consecutive_failures", schedule="weekdays") == 0
    assert not [k for k in s if ("schedule", "removed-long-ago") in k[1]]


def test_next_fire_time_paused_and_the_expected_interval_per_schedule(ledger: Ledger) -> None:
    s = scrape(live_value(), ledger)
    assert one(s, "reconciler_schedule_next_fire_timestamp_seconds", schedule="nightly") == NEXT.timestamp()
    assert one(s, "reconciler_schedule_next_fire_timestamp_seconds", schedule="held") is None  # suspended
    assert {one(s, "reconciler_schedule_paused", schedule=n) for n in ("nightly", "weekdays", "often", "held")} == {0}
    assert one(s, "reconciler_schedule_expected_interval_seconds", schedule="nightly") == 86400
    assert one(s, "reconciler_schedule_expected_interval_seconds", schedule="often") == 90
    # A weekday schedule may go a weekend without a run.
    assert one(s, "reconciler_schedule_expected_interval_seconds", schedule="weekdays") == 3 * 86400


def test_a_rejected_revision_is_dated_from_when_it_was_first_seen(ledger: Ledger) -> None:
    assert one(scrape(live_value(), ledger), "reconciler_revision_rejected") == 0
    assert one(scrape(live_value(), ledger), "reconciler_revision_rejected_since_timestamp_seconds") is None
    seen = NOW - timedelta(minutes=12)
    problem = Problem("a.yaml", 1, 1, (), "bad")
    s = scrape(live_value(attempted_revision="r2", attempted_at=seen, problems=(problem,)), ledger)
    assert one(s, "reconciler_revision_rejected") == 1
    assert one(s, "reconciler_revision_rejected_since_timestamp_seconds") == seen.timestamp()


def test_each_replica_shows_its_heartbeat_age_on_the_database_clock_and_its_state(ledger: Ledger) -> None:
    ledger.register_replica("r-alive", host="h1", pid=1, version="0", revision="r1", lease=timedelta(hours=1))
    ledger.register_replica("r-gone", host="h2", pid=2, version="0", revision="r1", lease=timedelta(hours=1))
    ledger.deregister_replica("r-gone")
    s = scrape(live_value(), ledger)
    age = one(s, "reconciler_replica_heartbeat_age_seconds", replica="r-alive", host="h1", revision="r1",
              state="alive")
    assert age is not None  # the database's now minus its heartbeat, not the scraper's clock
    assert 0 <= age < 60
    assert one(s, "reconciler_replica_heartbeat_age_seconds", replica="r-gone", host="h2", revision="r1",
               state="stopped") is not None  # the alert rule leaves out state="stopped"
    assert one(s, "reconciler_replicas", state="alive") == 1
