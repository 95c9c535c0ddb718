"""The dashboard's pictures in-process: run strips, a schedule's trends and the fleet timeline, over a
hand-made `Live` value and a real SQLite ledger (Starlette's TestClient against `build_app`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader, build_from_spec, load_library, resolve
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Pause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from reconciler.service import pictures
from reconciler.service.live import Live, Status
from tests.service.test_api import client_of

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
XSS = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"


def schedule(name: str, **fields: Any) -> Schedule:
    spec = {"name": name, "schedule": {"cron": "0 * * * *"}, "run": {"command": ["/bin/true"]}, **fields}
    built = build_from_spec(spec, f"{name}.yaml", Loader(), NOW)
    assert built is not None
    resolved, problems = resolve([built], load_library([]))
    assert problems == []
    return resolved[0]


def live_of(*items: Schedule) -> Live:
    schedules = {s.name: s for s in items}
    return Live(status=Status(applied_revision="r1", applied_at=NOW, attempted_revision="r1", attempted_at=NOW,
                              ready=True),
                schedules=schedules, hashes={n: s.spec_hash for n, s in schedules.items()},
                next_fire_times=lambda: {n: NOW + timedelta(minutes=30) for n, s in schedules.items() if s.enabled})


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def ran(ledger: Ledger, name: str, slot: datetime, status: RunStatus, seconds: float = 2.0, **usage: Any) -> int:
    """A finished run (claimed, then finished: only `finish` keeps what it used)."""
    run_id = ledger.claim(name, slot, attempt=1, cause=Cause.SCHEDULE, revision="r1", started_at=slot)
    assert run_id is not None
    ledger.finish(run_id, Outcome(status, slot + timedelta(seconds=seconds),
                                  exit_code=0 if status == RunStatus.SUCCEEDED else 3, **usage))
    return run_id


def test_strips_hold_each_schedules_last_runs_oldest_first_in_one_call(ledger: Ledger) -> None:
    for i in range(60):
        ran(ledger, "a", NOW - timedelta(hours=60 - i), RunStatus.FAILED if i % 7 == 0 else RunStatus.SUCCEEDED)
    ids_b = [ran(ledger, "b", NOW - timedelta(hours=3 - i), RunStatus.SUCCEEDED) for i in range(3)]
    client = client_of(live_of(schedule("a"), schedule("b"), schedule("c")), ledger)
    data = client.get("/api/v1/strips", params=[("name", "a"), ("name", "b"), ("name", "c"),
                                                 ("name", "gone")]).json()
    assert data["runs"] == 40
    assert sorted(data["strips"]) == ["a", "b", "c"]  # not a schedule of the revision: left out
    a = data["strips"]["a"]
    assert len(a) == 40
    assert [c["slot"] for c in a] == sorted(c["slot"] for c in a)  # oldest first
    assert a[-1]["slot"] == "2026-03-02T08:30:00Z"
    assert a[-1] == {"id": a[-1]["id"], "slot": "2026-03-02T08:30:00Z", "status": "succeeded", "attempt": 1,
                     "trigger": "schedule", "duration_seconds": 2.0, "exit_code": 0, "http_status": None}
    assert [c["status"] for c in a].count("failed") == sum(1 for i in range(20, 60) if i % 7 == 0)
    assert [c["id"] for c in data["strips"]["b"]] == ids_b
    assert data["strips"]["c"] == []
    assert len(client.get("/api/v1/strips", params={"name": "a", "runs": 50}).json()["strips"]["a"]) == 50


def test_strips_refuse_too_many_names_and_out_of_range_sizes(ledger: Ledger) -> None:
    client = client_of(live_of(schedule("a")), ledger)
    assert client.get("/api/v1/strips", params=[("name", f"n{i}") for i in range(1001)]).status_code == 400
    for runs in ("0", "51", "x"):
        assert client.get("/api/v1/strips", params={"name": "a", "runs": runs}).status_code == 400


def test_trends_give_points_with_usage_failures_marked_and_success_rates(ledger: Ledger) -> None:
    for i in range(10):  # hourly for the last 10 h: 24 h holds all, three of them failed
        status = RunStatus.FAILED if i in (2, 5) else RunStatus.TIMED_OUT if i == 8 else RunStatus.SUCCEEDED
        ran(ledger, "a", NOW - timedelta(hours=10 - i), status, seconds=1.0 + i,
            peak_memory=(i + 1) * 1048576, cpu_user=0.5, cpu_system=0.25)
    ran(ledger, "a", NOW - timedelta(days=3), RunStatus.FAILED)  # in 7 d only
    ran(ledger, "a", NOW - timedelta(days=8), RunStatus.FAILED)  # in neither
    ledger.record("a", NOW - timedelta(hours=1, minutes=30), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                  outcome=Outcome(RunStatus.SKIPPED, NOW, error="the previous run still ran"))
    client = client_of(live_of(schedule("a")), ledger)
    data = client.get("/api/v1/schedules/a/trends").json()
    points = data["points"]
    assert len(points) == 13
    assert [p["slot"] for p in points] == sorted(p["slot"] for p in points)
    last = points[-1]
    assert (last["duration_seconds"], last["peak_memory_bytes"], last["cpu_seconds"]) == (10.0, 10485760, 0.75)
    assert [p["failed"] for p in points].count(True) == 5  # failed and timed out; skipped is not a failure
    assert data["success"]["24h"] == {"succeeded": 7, "ended": 10, "rate": 0.7,
                                      "counts": {"failed": 2, "skipped": 1, "succeeded": 7, "timed_out": 1}}
    assert (data["success"]["7d"]["ended"], data["success"]["7d"]["rate"]) == (11, 7 / 11)
    assert [u["slot"] for u in data["upcoming"][:2]] == ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"]
    assert len(data["upcoming"]) == 10
    assert data["graph"] is None  # the dependency graph's place
    assert client.get("/api/v1/schedules/nope/trends").status_code == 404
    assert len(client.get("/api/v1/schedules/a/trends", params={"runs": 3}).json()["points"]) == 3


def test_a_schedule_without_runs_has_no_success_rate_rather_than_zero(ledger: Ledger) -> None:
    data = client_of(live_of(schedule("a")), ledger).get("/api/v1/schedules/a/trends").json()
    assert data["points"] == []
    assert data["success"]["24h"] == {"succeeded": 0, "ended": 0, "rate": None, "counts": {}}


def test_the_timeline_lists_the_slots_of_the_range_with_skipped_ones_and_why(ledger: Ledger) -> None:
    hourly = schedule("hourly")
    windowed = schedule("windowed", windows=[{"kind": "allow", "cron": "0 12 * * *", "duration": "6h"}],
                        policy={"outside": "skip"})
    paused = schedule("paused-one", schedule={"cron": "30 */2 * * *"})
    held = schedule("held", enabled=False)
    ledger.pause(Pause("paused-one", by="ops", at=NOW, reason="db migration <b>now</b>",
                       until=NOW + timedelta(hours=5)))
    client = client_of(live_of(hourly, windowed, paused, held), ledger)
    data = client.get("/api/v1/timeline", params={"hours": 24}).json()
    assert (data["from"], data["to"], data["truncated"]) == ("2026-03-02T09:30:00Z", "2026-03-03T09:30:00Z", None)
    by = {lane["schedule"]: lane for lane in data["lanes"]}
    assert sorted(by) == ["hourly", "paused-one", "windowed"]  # a disabled schedule fires nothing
    assert (by["hourly"]["slots"], by["windowed"]["slots"], by["paused-one"]["slots"]) == (24, 24, 12)
    skipped = [s for s in data["slots"] if s["skipped"]]
    windowed_skips = [s for s in skipped if s["schedule"] == "windowed"]
    assert len(windowed_skips) == 24 - 6  # 12:00-18:00 UTC is open
    assert all(s["skipped"].startswith("window") for s in windowed_skips)
    pause_skips = [s for s in skipped if s["schedule"] == "paused-one"]
    assert [s["slot"] for s in pause_skips] == ["2026-03-02T10:30:00Z", "2026-03-02T12:30:00Z"]
    assert "db migration <b>now</b>" in pause_skips[0]["skipped"]  # as text; the page sets textContent
    assert data["counts"] == {"slots": 60, "skipped": 20, "heavy": 0}
    first = data["slots"][0]
    assert (first["schedule"], first["fires"], first["local"]) == ("hourly", "2026-03-02T10:00:00Z",
                                                                   "2026-03-02 10:00:00 UTC")
    berlin = client.get("/api/v1/timeline", params={"hours": 2, "zone": "Europe/Berlin"}).json()
    assert berlin["slots"][0]["local"] == "2026-03-02 11:00:00 Europe/Berlin"
    assert berlin["zone"] == "Europe/Berlin"


def test_the_timeline_stops_at_its_limit_and_says_so(ledger: Ledger) -> None:
    fast = [schedule(f"s{i}", schedule={"every": "1m"}) for i in range(3)]
    client = client_of(live_of(*fast), ledger)
    data = client.get("/api/v1/timeline", params={"hours": 24, "limit": 100}).json()
    assert len(data["slots"]) == 100
    assert "100 slots" in (data["truncated"] or "")
    assert [lane["slots"] for lane in data["lanes"]] == [100]
    small = client.get("/api/v1/timeline", params={"hours": 1, "limit": 150}).json()
    assert [lane["slots"] for lane in small["lanes"]] == [60, 60, 30]
    assert "1 of 3 schedules" not in (small["truncated"] or "")
    assert small["truncated"] is not None
    whole = client.get("/api/v1/timeline", params={"hours": 1, "limit": 180}).json()
    assert (whole["truncated"], whole["counts"]["slots"]) == (None, 180)


def test_heavy_jobs_that_overlap_are_counted(ledger: Ledger) -> None:
    # Three hourly jobs whose runs take 40 min, 30 min and 1 s: the first two overlap every hour.
    for name, seconds in (("big", 2400.0), ("mid", 1800.0), ("tiny", 1.0)):
        for i in range(3):
            ran(ledger, name, NOW - timedelta(hours=5 - i), RunStatus.SUCCEEDED, seconds=seconds)
    live = live_of(schedule("big"), schedule("mid", schedule={"cron": "10 * * * *"}), schedule("tiny"))
    client = client_of(live, ledger)
    data = client.get("/api/v1/timeline", params={"hours": 3, "heavy_seconds": 600}).json()
    lanes = {lane["schedule"]: lane for lane in data["lanes"]}
    assert (lanes["big"]["heavy"], lanes["mid"]["heavy"], lanes["tiny"]["heavy"]) == (True, True, False)
    assert lanes["big"]["typical_seconds"] == 2400.0
    assert data["counts"]["heavy"] == 6
    assert data["overlaps"]["peak"] == 2
    assert data["overlaps"]["peak_at"] == "2026-03-02T10:10:00Z"
    assert all(s["overlap"] == 1 for s in data["slots"] if s["heavy"])
    assert all(s["overlap"] == 0 for s in data["slots"] if not s["heavy"])
    calm = client.get("/api/v1/timeline", params={"hours": 3, "heavy_seconds": 3000}).json()
    assert (calm["counts"]["heavy"], calm["overlaps"]["peak"]) == (0, 0)


@pytest.mark.parametrize("params", [{"zone": "Mars/Olympus"}, {"zone": "../etc/passwd"}, {"zone": "Europe"},
                                    {"from": "yesterday"}, {"from": "2026-03-02T09:00:00"}, {"hours": "0"},
                                    {"hours": "169"}, {"limit": "20001"}, {"heavy_seconds": "-1"}])
def test_the_timeline_refuses_bad_parameters_with_400(ledger: Ledger, params: dict[str, str]) -> None:
    response = client_of(live_of(schedule("a")), ledger).get("/api/v1/timeline", params=params)
    assert response.status_code == 400
    assert "error" in response.json()


def test_the_timeline_starts_where_asked(ledger: Ledger) -> None:
    client = client_of(live_of(schedule("a")), ledger)
    data = client.get("/api/v1/timeline", params={"from": "2026-06-01T00:00:00+02:00", "hours": 2}).json()
    assert [s["slot"] for s in data["slots"]] == ["2026-05-31T22:00:00Z", "2026-05-31T23:00:00Z"]


def test_names_labels_and_reasons_with_markup_come_back_as_json_strings_only(ledger: Ledger) -> None:
    s = schedule("x", description=XSS, labels={"team": "web"})
    ran(ledger, "x", NOW - timedelta(hours=1), RunStatus.FAILED)
    ledger.pause(Pause("x", by=XSS, at=NOW, reason=XSS, until=None))
    client = client_of(live_of(s), ledger)
    for path in ("/api/v1/strips?name=x", "/api/v1/schedules/x/trends", "/api/v1/timeline?q=" + "%3Cscript"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert "default-src 'self'" in response.headers["content-security-policy"]
    timeline = client.get("/api/v1/timeline", params={"hours": 2}).json()
    assert XSS in timeline["slots"][0]["skipped"]
    assert json.loads(json.dumps(timeline))["slots"][0]["skipped"].count("<script>") == 2  # who and why


def test_the_charting_library_and_the_pictures_script_are_served_from_the_package(ledger: Ledger) -> None:
    client = client_of(live_of(schedule("a")), ledger)
    script = client.get("/vendor/uPlot.iife.min.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.text == (Path(pictures.__file__).parent.parent / "data" / "vendor" / "uPlot.iife.min.js").read_text()
    assert client.get("/vendor/uPlot.min.css").headers["content-type"].startswith("text/css")
    assert client.get("/charts.js").status_code == 200
    assert client.get("/vendor/uPlot.LICENSE").status_code == 404  # shipped in the package, not served


def test_a_schedule_triggered_after_another_has_no_clock_slots_on_the_timeline(ledger: Ledger) -> None:
    follower = schedule("follower", schedule={"after": ["hourly"]})
    client = client_of(live_of(schedule("hourly"), follower), ledger)
    data = client.get("/api/v1/timeline", params={"hours": 3}).json()
    assert [lane["schedule"] for lane in data["lanes"]] == ["hourly"]
    assert client.get("/api/v1/schedules/follower/trends").json()["upcoming"] == []
