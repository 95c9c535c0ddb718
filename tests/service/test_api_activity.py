"""Named tokens and roles, the activity every action leaves, and bulk pause and resume by label
selector, through the HTTP API in-process over a real, started Reconciler."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.ledger import open_ledger
from reconciler.ledger.base import Action
from reconciler.service.app import site_of
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.http import build_app
from reconciler.service.log import make_log
from reconciler.service.tokens import parse

# As in test_api.py: this import warns of its own dependencies' changes.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    warnings.filterwarnings("ignore", message="The anyio.abc.BlockingPortal alias is deprecated",
                            category=DeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")

OPS, VIEWER = "operate-token-0123456789", "read-only-token-0123456789"
TOKENS = parse(f"dana operate {OPS}\ngrafana read {VIEWER}\n", "tokens")
AS_DANA, AS_GRAFANA = {"Authorization": f"Bearer {OPS}"}, {"Authorization": f"Bearer {VIEWER}"}
YEARLY = "schedule: {cron: '0 3 1 1 *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"
LABELS = {"a": "{team: data}", "b": "{team: data, tier: '1'}", "c": "{team: web}"}

MakeClient = Callable[..., tuple[TestClient, Reconciler]]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    started: list[tuple[Reconciler, Any]] = []

    def make(**options: Any) -> tuple[TestClient, Reconciler]:
        sched = tmp_path / f"schedules-{len(started)}"
        sched.mkdir()
        for name, labels in LABELS.items():
            (sched / f"{name}.yaml").write_text(f"name: {name}\nlabels: {labels}\n{YEARLY}")
        ledger = open_ledger(tmp_path / f"ledger-{len(started)}.db")
        daemon = Reconciler(Options(directory=str(sched), listen=("127.0.0.1", 8080), **options), ledger,
                            make_log("json", io.StringIO()), lambda: datetime.now(UTC))
        daemon.start()
        started.append((daemon, ledger))
        return TestClient(build_app(site_of(daemon)), base_url="http://127.0.0.1:8080"), daemon

    yield make
    for daemon, ledger in started:
        daemon.stop()
        ledger.close()


# ---- roles ----------------------------------------------------------------------------------------

def test_a_read_token_cannot_act_and_an_operate_token_can(make_client: MakeClient) -> None:
    client, daemon = make_client(token=TOKENS)
    refused = client.post("/api/v1/schedules/a/pause", headers=AS_GRAFANA, json={"reason": "x"})
    assert refused.status_code == 403
    assert "grafana may only read" in refused.json()["error"]
    assert client.post("/api/v1/schedules/a/trigger", headers=AS_GRAFANA).status_code == 403
    wrong = {"Authorization": "Bearer " + "x" * 24}
    assert client.post("/api/v1/schedules/a/pause", headers=wrong).status_code == 401
    assert daemon.ledger.pauses() == {}
    assert client.post("/api/v1/schedules/a/pause", headers=AS_DANA, json={"reason": "x"}).json()["by"] == "dana"
    assert client.get("/api/v1/status").json()["read_only"] is False


def test_a_file_of_read_tokens_only_leaves_the_api_read_only(make_client: MakeClient) -> None:
    client, _ = make_client(token=parse(f"grafana read {VIEWER}", "t"))
    assert client.get("/api/v1/status").json()["read_only"] is True
    r = client.post("/api/v1/schedules/a/resume", headers=AS_GRAFANA)
    assert r.status_code == 403
    assert "read-only" in r.json()["error"]


def test_read_token_required_guards_every_read_but_the_probes_and_the_page(make_client: MakeClient) -> None:
    client, _ = make_client(token=TOKENS, read_token_required=True)
    for path in ("/api/v1/status", "/api/v1/schedules", "/api/v1/runs", "/api/v1/activity", "/api/v1/openapi.json",
                 "/api/v1/schedules/a/history", "/metrics"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert client.get(path, headers=AS_GRAFANA).status_code == 200, path
        assert client.get(path, headers=AS_DANA).status_code == 200, path
    for path in ("/healthz", "/", "/dashboard.js", "/dashboard.css", "/charts.js", "/vendor/uPlot.iife.min.js"):
        assert client.get(path).status_code in (200, 503), path
    assert client.post("/api/v1/schedules/a/trigger").status_code == 401


def test_without_read_token_required_reads_need_no_token(make_client: MakeClient) -> None:
    client, _ = make_client(token=TOKENS)
    assert client.get("/api/v1/activity").status_code == 200
    assert client.get("/metrics").status_code == 200


# ---- activity -------------------------------------------------------------------------------------

def test_every_action_is_recorded_with_the_tokens_name_newest_first(make_client: MakeClient) -> None:
    client, _ = make_client(token=TOKENS)
    r = client.post("/api/v1/schedules/a/trigger", headers=AS_DANA, json={"reason": "rerun <b>"})
    assert r.status_code == 202
    client.post("/api/v1/schedules/a/pause", headers=AS_DANA, json={"reason": "freeze", "for": "2h"})
    client.post("/api/v1/schedules/a/resume", headers=AS_DANA, json={"reason": "thawed"})
    now = datetime.now(UTC)
    dry = {"from": (now - timedelta(days=800)).isoformat(), "to": now.isoformat(), "dry_run": True}
    assert client.post("/api/v1/schedules/b/backfill", headers=AS_DANA, json=dry).status_code == 200
    items = client.get("/api/v1/activity").json()["items"]
    assert [(i["who"], i["action"], i["targets"], i["reason"]) for i in items] == [
        ("dana", "resume", ["a"], "thawed"), ("dana", "pause", ["a"], "freeze"),
        ("dana", "trigger", ["a"], "rerun <b>")]
    assert items[0]["details"] == {"was_paused": True}
    assert items[1]["details"]["until"] is not None
    assert all(abs(datetime.fromisoformat(i["at"]) - now) < timedelta(minutes=1) for i in items)
    paged = client.get("/api/v1/activity", params={"limit": 2}).json()
    assert [i["action"] for i in paged["items"]] == ["resume", "pause"]
    rest = client.get("/api/v1/activity", params={"before": paged["next_before"]}).json()
    assert [i["action"] for i in rest["items"]] == ["trigger"]
    assert client.get("/api/v1/activity", params={"schedule": "b"}).json()["items"] == []


def test_a_backfill_that_runs_is_recorded_with_its_range_and_slot_count(make_client: MakeClient) -> None:
    client, daemon = make_client(token=TOKENS)
    now = datetime.now(UTC)
    body = {"from": (now - timedelta(days=800)).isoformat(), "to": now.isoformat(), "reason": "lost data"}
    r = client.post("/api/v1/schedules/b/backfill", headers=AS_DANA, json=body)
    assert r.status_code == 202
    [act] = daemon.ledger.activity("b")
    assert (act.who, act.action, act.reason) == ("dana", Action.BACKFILL, "lost data")
    runs = sum(slot["plan"] == "run" for slot in r.json()["slots"])
    assert runs >= 2
    assert act.details == {"from": body["from"], "to": body["to"], "slots": runs}


def test_a_refused_action_leaves_no_activity(make_client: MakeClient) -> None:
    client, daemon = make_client(token=TOKENS)
    client.post("/api/v1/schedules/a/pause", headers=AS_GRAFANA)
    client.post("/api/v1/schedules/nope/pause", headers=AS_DANA)
    client.post("/api/v1/schedules/a/pause", headers=AS_DANA, json={"until": "soon"})
    assert daemon.ledger.activity() == []


def test_the_activity_api_refuses_a_bad_page_plainly(make_client: MakeClient) -> None:
    client, _ = make_client(token=TOKENS)
    assert client.get("/api/v1/activity", params={"before": "x"}).status_code == 400
    assert client.get("/api/v1/activity", params={"limit": "0"}).status_code == 400


# ---- bulk pause and resume ---------------------------------------------------------------------------

def test_a_bulk_pause_shows_what_it_would_pause_then_pauses_it_on_confirm(make_client: MakeClient) -> None:
    client, daemon = make_client(token=TOKENS)
    body = {"selector": "team=data", "reason": "migration", "for": "1h"}
    dry = client.post("/api/v1/bulk/pause", headers=AS_DANA, json=body).json()
    assert (dry["dry_run"], dry["schedules"]) == (True, ["a", "b"])
    assert daemon.ledger.pauses() == {}
    assert daemon.ledger.activity() == []
    done = client.post("/api/v1/bulk/pause", headers=AS_DANA, json={**body, "confirm": dry["confirm"]}).json()
    assert (done["dry_run"], done["schedules"]) == (False, ["a", "b"])
    assert {n: p.reason for n, p in daemon.ledger.pauses().items()} == {"a": "migration", "b": "migration"}
    [act] = daemon.ledger.activity()
    assert (act.who, act.action, act.targets, act.reason) == ("dana", Action.BULK_PAUSE, ("a", "b"), "migration")
    assert act.details["selector"] == "team=data"
    assert act.details["until"] is not None
    only_b = client.post("/api/v1/bulk/resume", headers=AS_DANA, json={"selector": "team=data, tier=1"}).json()
    assert only_b["schedules"] == ["b"]
    client.post("/api/v1/bulk/resume", headers=AS_DANA, json={"selector": "team=data,tier=1",
                                                                "confirm": only_b["confirm"]})
    assert set(daemon.ledger.pauses()) == {"a"}
    assert daemon.ledger.activity()[0].details == {"selector": "team=data,tier=1", "were_paused": ["b"]}


def test_a_bulk_confirm_for_another_set_of_schedules_is_refused_with_the_new_list(make_client: MakeClient) -> None:
    client, daemon = make_client(token=TOKENS)
    web = client.post("/api/v1/bulk/pause", headers=AS_DANA, json={"selector": "team=web"}).json()
    r = client.post("/api/v1/bulk/pause", headers=AS_DANA, json={"selector": "team=data", "confirm": web["confirm"]})
    assert r.status_code == 409
    assert r.json()["schedules"] == ["a", "b"]
    assert daemon.ledger.pauses() == {}


@pytest.mark.parametrize("body", [{}, {"selector": ""}, {"selector": "team"}, {"selector": 3},
                                  {"selector": "team=data", "until": "2099-01-01T00:00:00Z", "for": "1h"}])
def test_a_bulk_request_that_makes_no_sense_is_refused_plainly(make_client: MakeClient, body: dict[str, Any]) -> None:
    client, daemon = make_client(token=TOKENS)
    assert client.post("/api/v1/bulk/pause", headers=AS_DANA, json=body).status_code == 400
    assert client.post("/api/v1/bulk/pause", headers=AS_GRAFANA, json={"selector": "team=data"}).status_code == 403
    assert daemon.ledger.pauses() == {}
