"""The API's view of dependencies (issue 18): a schedule's upstreams and downstreams."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.ledger import open_ledger
from reconciler.service.app import site_of
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.http import build_app
from reconciler.service.log import make_log
from tests.service.test_api import TestClient  # type: ignore[attr-defined]  # imported there with its warnings filtered

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")


def test_a_schedule_lists_its_upstreams_and_downstreams_and_one_after_others_is_active(tmp_path: Path) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    run = "run: {command: [/bin/true]}\n"
    (sched / "etl.yaml").write_text(
        f"name: extract\nschedule: {{cron: '0 3 1 1 *'}}\n{run}---\n"
        f"name: transform\nschedule: {{after: [extract]}}\n{run}---\n"
        f"name: load\nschedule: {{cron: '0 4 1 1 *'}}\n{run}requires: [{{schedule: transform, within: 1d}}]\n")
    ledger = open_ledger(tmp_path / "l.db")
    daemon = Reconciler(Options(directory=str(sched), listen=("127.0.0.1", 8080)), ledger,
                        make_log("json", io.StringIO()), lambda: datetime.now(UTC))
    daemon.start()
    try:
        client = TestClient(build_app(site_of(daemon)), base_url="http://127.0.0.1:8080")
        t = client.get("/api/v1/schedules/transform").json()
        assert (t["upstreams"], t["downstreams"]) == (["extract"], ["load"])
        assert (t["state"], t["kind"], t["schedule"]) == ("active", "after", "after extract (on success)")
        assert client.get("/api/v1/schedules/extract").json()["downstreams"] == ["transform"]
        assert client.get("/api/v1/schedules/load").json()["upstreams"] == ["transform"]
    finally:
        daemon.stop()
        ledger.close()
