"""A backfill through the API says what calendars do to each slot and does that, in-process over a
real started Reconciler whose schedule skips German holidays (it fires on 1 January only)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.ledger import open_ledger
from reconciler.service.app import site_of
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.http import build_app
from reconciler.service.log import make_log
from tests.harness import wait_for
from tests.service.test_api import TOKEN, YEARLY

with warnings.catch_warnings():  # as tests/service/test_api.py imports it
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    warnings.filterwarnings("ignore", message="The anyio.abc.BlockingPortal alias is deprecated",
                            category=DeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Reconciler]]:
    sched = tmp_path / "schedules"
    (sched / "calendars").mkdir(parents=True)
    (sched / "calendars" / "de-holidays.yaml").write_text("holidays: {country: DE}\n")
    (sched / "a.yaml").write_text(f"name: a\n{YEARLY}calendar: {{exclude: [de-holidays]}}\n")
    ledger = open_ledger(tmp_path / "l.db")
    daemon = Reconciler(Options(directory=str(sched), listen=("127.0.0.1", 8080), token=TOKEN), ledger,
                        make_log("json", io.StringIO()), lambda: datetime.now(UTC))
    daemon.start()
    try:
        yield TestClient(build_app(site_of(daemon)), base_url="http://127.0.0.1:8080"), daemon
    finally:
        daemon.stop()
        ledger.close()


def test_an_api_backfill_lists_the_calendars_skips_then_records_exactly_those(
        served: tuple[TestClient, Reconciler]) -> None:
    client, daemon = served
    now = datetime.now(UTC)
    body = {"from": (now - timedelta(days=2 * 366)).isoformat(), "to": now.isoformat()}
    dry = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json={**body, "dry_run": True})
    assert dry.status_code == 200
    planned = dry.json()["slots"]
    assert len(planned) == 2
    assert {(s["plan"], s["detail"]) for s in planned} == {("skipped", "calendar de-holidays (New Year's Day)")}
    assert daemon.ledger.runs("a") == []
    real = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json=body)
    assert real.status_code == 202  # it writes: the calendar's skips, as the daemon would have
    assert [(s["slot"], s["plan"]) for s in real.json()["slots"]] == [(s["slot"], s["plan"]) for s in planned]
    wait_for(lambda: len(daemon.ledger.runs("a")) == 2, what="two recorded skips")
    assert {(r.status, r.cause, r.error) for r in daemon.ledger.runs("a")} == {
        ("skipped", "backfill", "calendar de-holidays (New Year's Day)")}
