"""Replicas in the HTTP app, in-process (Starlette's TestClient over a hand-made `Live` and a real
ledger): /readyz fails closed with its reason, every run names its replica, /metrics and
/api/v1/summary show the replicas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from reconciler.service.metrics import Metrics, gauges
from tests.service.test_api import NOW, client_of, live_value

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def test_readyz_is_false_with_the_reason_while_the_ledger_cannot_be_reached(ledger: Ledger) -> None:
    down = live_value(ledger_unreachable="postgresql://r@db:5432/x: connection refused")
    r = client_of(down, ledger).get("/readyz")
    assert r.status_code == 503
    assert "the ledger cannot be reached" in r.text
    assert "connection refused" in r.text
    assert client_of(down, ledger).get("/api/v1/status").json()["ledger_unreachable"].endswith("connection refused")
    assert client_of(live_value(), ledger).get("/readyz").status_code == 200


def test_every_run_names_the_replica_that_ran_it(ledger: Ledger) -> None:
    ran = ledger.claim("active", NOW, attempt=1, cause=Cause.SCHEDULE, revision="r1", started_at=NOW, owner="h:1:ab")
    assert ran is not None
    ledger.finish(ran, Outcome(RunStatus.SUCCEEDED, NOW))
    skipped = ledger.record("active", NOW + timedelta(minutes=1), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                            outcome=Outcome(RunStatus.SKIPPED, NOW))
    client = client_of(live_value(), ledger)
    assert client.get(f"/api/v1/runs/{ran}").json()["replica"] == "h:1:ab"
    assert client.get(f"/api/v1/runs/{skipped}").json()["replica"] is None  # never started: no replica ran it
    assert [r["replica"] for r in client.get("/api/v1/runs").json()["items"]] == [None, "h:1:ab"]


def test_metrics_show_every_replica_its_state_heartbeat_age_and_runs_owned(ledger: Ledger) -> None:
    ledger.register_replica("h:1:ab", host="h", pid=1, version="v", revision="r1", lease=timedelta(seconds=20))
    ledger.register_replica("h:2:cd", host="h", pid=2, version="v", revision="r0", lease=timedelta(seconds=20))
    ledger.deregister_replica("h:2:cd")
    ledger.claim("active", NOW, attempt=1, cause=Cause.SCHEDULE, revision="r1", started_at=NOW, owner="h:1:ab")
    live = live_value(ledger_unreachable=None)
    metrics = Metrics(lambda: gauges(live, 0), replicas=ledger.replicas)
    metrics.refused.labels("superseded").inc()
    text = client_of(live, ledger, registry=metrics.registry).get("/metrics").text
    assert 'reconciler_replicas{state="alive"} 1.0' in text
    assert 'reconciler_replicas{state="stopped"} 1.0' in text
    assert 'reconciler_replicas{state="expired"} 0.0' in text
    assert 'reconciler_replica_runs_owned{replica="h:1:ab"} 1.0' in text
    assert 'reconciler_replica_heartbeat_age_seconds{host="h",replica="h:1:ab",revision="r1",state="alive"}' in text
    assert 'reconciler_claims_refused_total{reason="superseded"} 1.0' in text
    assert "reconciler_ledger_unreachable 0.0" in text


def test_metrics_say_the_ledger_is_unreachable_without_failing_the_scrape(ledger: Ledger) -> None:
    def unreachable() -> list[object]:
        raise OSError("connection refused")

    live = live_value(ledger_unreachable="connection refused")
    metrics = Metrics(lambda: gauges(live, 0), replicas=unreachable)  # type: ignore[arg-type]
    r = client_of(live, ledger, registry=metrics.registry).get("/metrics")
    assert r.status_code == 200
    assert "reconciler_ledger_unreachable 1.0" in r.text
    assert 'reconciler_replicas{state="alive"} 0.0' in r.text


def test_the_summary_shows_revision_runs_failing_schedules_replicas_and_next_fires(ledger: Ledger) -> None:
    ledger.register_replica("h:1:ab", host="h", pid=1, version="v", revision="r1", lease=timedelta(seconds=20))
    failed = ledger.claim("active", NOW, attempt=1, cause=Cause.SCHEDULE, revision="r1", started_at=NOW,
                          owner="h:1:ab")
    assert failed is not None
    ledger.finish(failed, Outcome(RunStatus.FAILED, NOW, error="exit 1"))
    data = client_of(live_value(), ledger).get("/api/v1/summary").json()
    assert data["source"] == "daemon"
    assert data["applied"]["revision"] == "r1"
    assert data["runs"]["failed"] == 1
    assert [(f["schedule"], f["replica"]) for f in data["failing"]] == [("active", "h:1:ab")]
    assert [r["id"] for r in data["replicas"]] == ["h:1:ab"]
    assert [n["schedule"] for n in data["next"]] == ["active"]
