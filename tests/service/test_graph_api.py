"""GET /api/v1/graph in-process (issue 18): the whole dependency graph over a hand-made `Live` value
and a real ledger; its shape is computed once per revision and bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from reconciler.service.graph import ShapeCache, shape_of
from reconciler.service.http import Site, build_app
from reconciler.service.live import Live, Status
from tests.service.test_api import TestClient  # type: ignore[attr-defined]  # imported there with its warnings filtered

pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RUN = {"command": ["/bin/true"]}


def make(name: str, **fields: Any) -> Schedule:
    spec = {"name": name, "schedule": {"cron": "0 2 * * *"}, "run": RUN, **fields}
    built = build_from_spec(spec, f"{name}.yaml", Loader(), NOW)
    assert built is not None, spec
    return built


def etl(revision: str = "r1", **extra: Schedule) -> Live:
    """extract -> transform -> load (after), report requires load, lonely depends on nothing."""
    schedules = {
        "extract": make("extract", description="<b>pull</b> & <script>x</script>"),
        "transform": make("transform", schedule={"after": ["extract"]}),
        "load": make("load", schedule={"after": ["transform"], "on": "finished"}),
        "report": make("report", requires=[{"schedule": "load", "status": "succeeded", "within": "1d"},
                                           {"schedule": "self", "status": "succeeded"}]),
        "lonely": make("lonely"),
        **extra,
    }
    return Live(status=Status(applied_revision=revision, ready=True), schedules=schedules,
                hashes={n: s.spec_hash for n, s in schedules.items()},
                next_fire_times=lambda: {"extract": NOW + timedelta(hours=1), "report": NOW + timedelta(hours=2),
                                         "lonely": NOW})


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def client_of(live: Any, ledger: Ledger) -> TestClient:
    return TestClient(build_app(Site(live=live, ledger=ledger, directory="/srv", clock=lambda: NOW)),
                      base_url="http://127.0.0.1:8080")


def test_the_graph_has_every_schedule_in_a_dependency_and_its_edges_with_their_kind(ledger: Ledger) -> None:
    data = client_of(lambda: etl(), ledger).get("/api/v1/graph").json()
    assert [n["name"] for n in data["nodes"]] == ["extract", "load", "report", "transform"]  # not lonely
    assert [(e["from"], e["to"], e["kind"]) for e in data["edges"]] == [
        ("transform", "load", "after"), ("load", "report", "requires"), ("extract", "transform", "after")]
    load, requires = data["edges"][0], data["edges"][1]
    assert (load["on"], load["all"], load["status"]) == ("finished", False, None)
    assert (requires["on"], requires["status"], requires["within_seconds"]) == (None, "succeeded", 86400.0)
    assert (data["revision"], data["total_nodes"], data["total_edges"], data["truncated"]) == ("r1", 4, 3, False)


def test_a_node_carries_its_state_and_last_run_status_and_a_description_stays_text(ledger: Ledger) -> None:
    run_id = ledger.record("transform", NOW, attempt=1, cause=Cause.MANUAL, revision="r1",
                           outcome=Outcome(RunStatus.FAILED, NOW + timedelta(seconds=1), exit_code=3),
                           started_at=NOW)
    response = client_of(lambda: etl(), ledger).get("/api/v1/graph")
    assert response.headers["content-type"] == "application/json"
    nodes = {n["name"]: n for n in response.json()["nodes"]}
    assert (nodes["transform"]["last_status"], nodes["transform"]["last_run_id"]) == ("failed", run_id)
    assert (nodes["transform"]["kind"], nodes["transform"]["state"]) == ("after", "active")
    assert (nodes["extract"]["last_status"], nodes["extract"]["kind"]) == (None, "cron")
    assert nodes["extract"]["description"] == "<b>pull</b> & <script>x</script>"  # JSON text, escaped by the page


def test_the_shape_is_computed_once_per_revision_and_again_for_a_new_one(ledger: Ledger) -> None:
    cache = ShapeCache()
    first = etl("r1")
    assert cache.get(first) is cache.get(first)
    same_maps = Live(status=Status(applied_revision="r1", ready=True, error="x"), schedules=first.schedules)
    assert cache.get(same_maps) is cache.get(first)  # a new status over the same revision
    assert cache.computed == 1
    newer = etl("r2", more=make("more", schedule={"after": ["lonely"]}))
    assert "lonely" in cache.get(newer).nodes
    assert cache.computed == 2


def test_the_app_computes_the_shape_once_for_many_requests_of_one_revision(ledger: Ledger,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import graph

    calls: list[int] = []
    real = graph.shape_of

    def counted(*args: Any) -> graph.Shape:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(graph, "shape_of", counted)
    live = etl()
    client = client_of(lambda: live, ledger)
    for _ in range(3):
        assert client.get("/api/v1/graph").status_code == 200
    assert len(calls) == 1


def test_a_graph_larger_than_the_bound_is_cut_and_says_so() -> None:
    chain = {"c0": make("c0")}
    for i in range(1, 30):
        chain[f"c{i}"] = make(f"c{i}", schedule={"after": [f"c{i - 1}"]})
    shape = shape_of(chain, max_nodes=10)
    assert len(shape.nodes) == 10
    assert (shape.total_nodes, shape.total_edges) == (30, 29)
    assert all(e.upstream in shape.nodes and e.downstream in shape.nodes for e in shape.edges)


def test_a_tree_without_dependencies_has_an_empty_graph(ledger: Ledger) -> None:
    live = Live(status=Status(applied_revision="r1", ready=True), schedules={"a": make("a")})
    data = client_of(lambda: live, ledger).get("/api/v1/graph").json()
    assert (data["nodes"], data["edges"], data["truncated"]) == ([], [], False)


def test_the_graph_script_style_and_layout_library_are_served_under_the_strict_csp(ledger: Ledger) -> None:
    client = client_of(lambda: etl(), ledger)
    for path, media in (("/graph.js", "text/javascript"), ("/graph.css", "text/css"),
                        ("/vendor/dagre.min.js", "text/javascript")):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media), path
        assert "script-src 'self';" in response.headers["content-security-policy"]
    page = client.get("/").text
    assert '<script src="/vendor/dagre.min.js" defer></script>' in page
    assert 'src="/graph.js"' in page
    assert "dagre" in client.get("/vendor/dagre.min.js").text


def test_an_answer_with_both_edge_kinds_and_a_last_run_matches_the_openapi_document(ledger: Ledger) -> None:
    from jsonschema import Draft202012Validator

    from reconciler import __version__
    from reconciler.service.openapi import document

    ledger.record("load", NOW, attempt=1, cause=Cause.MANUAL, revision="r1",
                  outcome=Outcome(RunStatus.SUCCEEDED, NOW + timedelta(seconds=1), exit_code=0), started_at=NOW)
    data = client_of(lambda: etl(), ledger).get("/api/v1/graph").json()
    assert {e["kind"] for e in data["edges"]} == {"after", "requires"}
    validator = Draft202012Validator({**document(__version__), "$ref": "#/components/schemas/Graph"})
    assert list(validator.iter_errors(data)) == []
    data["edges"][0]["extra"] = 1  # the schema is exact: a field added without describing it fails
    assert list(validator.iter_errors(data))
