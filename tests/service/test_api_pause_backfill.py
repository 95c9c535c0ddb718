"""Pause, resume and backfill through the HTTP API, in-process, over a real started Reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.service import test_api
from tests.service.test_api import TOKEN, MakeClient

make_client = test_api.make_client  # the fixture: a started Reconciler and a client for its app

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_pause_and_resume_need_the_token_and_are_recorded_in_the_ledger(make_client: MakeClient) -> None:
    client, daemon, _ = make_client(token=TOKEN)
    assert client.post("/api/v1/schedules/a/pause").status_code == 401
    r = client.post("/api/v1/schedules/a/pause", headers=AUTH, json={"reason": "freeze", "for": "2h"})
    assert r.status_code == 200
    assert (r.json()["by"], r.json()["reason"], r.json()["active"]) == ("api-token", "freeze", True)
    assert set(daemon.ledger.pauses()) == {"a"}
    listed = client.get("/api/v1/pauses").json()["items"]
    assert [(p["schedule"], p["reason"]) for p in listed] == [("a", "freeze")]
    one = client.get("/api/v1/schedules/a").json()
    assert one["paused"]["reason"] == "freeze"
    assert all(u["skipped"] and "freeze" in u["skipped"] for u in one["upcoming"] if u["slot"] < listed[0]["until"])
    items = {s["name"]: s["paused"] for s in client.get("/api/v1/schedules").json()["items"]}
    assert items["b"] is None
    assert items["a"]["until"] == listed[0]["until"]
    assert client.post("/api/v1/schedules/a/resume", headers=AUTH).json() == {"schedule": "a", "was_paused": True}
    assert client.get("/api/v1/pauses").json() == {"items": []}
    assert daemon.ledger.pauses() == {}


def test_a_pause_request_that_makes_no_sense_is_refused_plainly(make_client: MakeClient) -> None:
    client, _, _ = make_client(token=TOKEN)
    both = client.post("/api/v1/schedules/a/pause", headers=AUTH, json={"until": "2099-01-01T00:00:00Z", "for": "1h"})
    assert both.status_code == 400
    assert "give one of them" in both.json()["error"]
    assert client.post("/api/v1/schedules/a/pause", headers=AUTH, content=b"[1]").status_code == 400
    assert client.post("/api/v1/schedules/nope/pause", headers=AUTH).status_code == 404
    assert make_client().client.post("/api/v1/schedules/a/pause").status_code == 403  # read-only


def test_a_backfill_dry_run_lists_the_slots_and_the_future_is_refused(make_client: MakeClient) -> None:
    client, daemon, _ = make_client(token=TOKEN)
    now = datetime.now(UTC)
    # `a` fires at 03:00 Berlin on 1 January: three slots in three years.
    body = {"from": (now - timedelta(days=3 * 366)).isoformat(), "to": now.isoformat(), "dry_run": True}
    r = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json=body)
    assert r.status_code == 200
    assert [s["plan"] for s in r.json()["slots"]] == ["run", "run", "run"]
    client.post("/api/v1/schedules/a/pause", headers=AUTH, json={"reason": "freeze"})
    paused = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json=body).json()["slots"]
    assert {s["plan"] for s in paused} == {"paused"}
    future = client.post("/api/v1/schedules/a/backfill", headers=AUTH,
                         json={**body, "to": (now + timedelta(days=1)).isoformat()})
    assert future.status_code == 400
    assert "in the future" in future.json()["error"]
    too_many = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json={**body, "max": 2})
    assert too_many.status_code == 400
    assert client.post("/api/v1/schedules/a/backfill", json=body).status_code == 401
    assert daemon.ledger.runs("a") == []


def test_a_backfill_through_the_api_runs_each_free_slot_once_in_the_daemon(make_client: MakeClient) -> None:
    from tests.harness import wait_for

    client, daemon, _ = make_client(token=TOKEN)
    now = datetime.now(UTC)
    body = {"from": (now - timedelta(days=3 * 366)).isoformat(), "to": now.isoformat()}
    r = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json=body)
    assert r.status_code == 202
    wait_for(lambda: len([x for x in daemon.ledger.runs("a") if x.status == "succeeded"]) == 3, what="3 runs")
    assert {(x.cause, x.attempt) for x in daemon.ledger.runs("a")} == {("backfill", 1)}
    again = client.post("/api/v1/schedules/a/backfill", headers=AUTH, json=body)
    assert again.status_code == 200  # nothing left to run
    assert {s["plan"] for s in again.json()["slots"]} == {"ran"}


def test_metrics_show_each_active_pause_with_its_reason_and_expiry(make_client: MakeClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client, _, _ = make_client(token=TOKEN)
    client.post("/api/v1/schedules/a/pause", headers=AUTH, json={"reason": "freeze", "until": "2099-01-01T00:00:00Z"})
    client.post("/api/v1/schedules/b/pause", headers=AUTH, json={"reason": "forever"})

    def samples() -> dict[tuple[str, str], float]:
        families = text_string_to_metric_families(client.get("/metrics").text)
        return {(s.labels["schedule"], s.labels["reason"]): s.value for f in families
                if f.name == "reconciler_schedule_paused_until_timestamp_seconds" for s in f.samples}

    from tests.harness import wait_for

    # The daemon's view of the pauses is refreshed within a second (or at once after an API pause).
    found = wait_for(lambda: samples() if len(samples()) == 2 else None, timeout=5, what="two pauses in /metrics")
    assert found[("a", "freeze")] == datetime(2099, 1, 1, tzinfo=UTC).timestamp()
    assert found[("b", "forever")] == float("inf")
