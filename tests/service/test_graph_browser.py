"""The dependency graph in a real headless Chromium (Debian's) over a real `reconciler run`: the
chain extract -> transform -> load and a `requires` edge, drawn, coloured, clicked through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, commit_all, init_repo, wait_for
from tests.service.test_dashboard_browser import XSS, chromium_page, png_size
from tests.service.test_http import api, free_port

RUN = "run: {command: [/bin/true]}\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("graph")
    sched = tmp / "schedules"
    init_repo(sched)
    (sched / "etl.yaml").write_text(
        f"name: extract\ndescription: '{XSS.replace(chr(39), chr(39) * 2)}'\nschedule: {{every: 1s}}\n{RUN}---\n"
        f"name: transform\nschedule: {{after: [extract]}}\n{RUN}---\n"
        f"name: load\nschedule: {{after: [transform], on: finished}}\n{RUN}")
    (sched / "report.yaml").write_text(
        f"name: report\nschedule: {{every: 1h}}\n{RUN}requires: [{{schedule: load, status: succeeded, within: 1h}}]\n")
    (sched / "alone.yaml").write_text(f"name: alone\nschedule: {{every: 1h}}\n{RUN}")
    commit_all(sched, "an etl chain and a report that requires it")
    port = free_port()
    d = Daemon(sched, tmp, "--listen", f"127.0.0.1:{port}")
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: all(n["last_status"] == "succeeded" for n in api(base, "/api/v1/graph")["nodes"]
                         if n["name"] in ("extract", "transform", "load")), timeout=30, what="the chain to run")
    yield base
    assert d.stop() == 0


@pytest.fixture
def page() -> Iterator[Any]:
    # A CSP violation (an inline style, an eval) is reported as a console error.
    with chromium_page(console_errors=True) as pg:
        yield pg


def test_the_graph_view_draws_the_chain_and_the_requires_edge_coloured_by_last_status(
        page: Any, site: str, tmp_path: Path) -> None:
    page.goto(site + "/#/graph")
    page.wait_for_selector("body[data-graph=drawn]")
    assert page.locator("#overview-view").is_hidden()
    nodes = page.locator("#g-svg a.gnode").evaluate_all("ns => ns.map(n => n.dataset.name)")
    assert sorted(nodes) == ["extract", "load", "report", "transform"]  # `alone` depends on nothing
    edges = page.locator("#g-svg g.gedge").evaluate_all(
        "es => es.map(e => [e.dataset.from, e.dataset.to, e.dataset.kind])")
    assert sorted(map(tuple, edges)) == [("extract", "transform", "after"), ("load", "report", "requires"),
                                         ("transform", "load", "after")]
    # Laid out left to right along the chain.
    xs = {n: page.locator(f"a.gnode[data-name={n}]").bounding_box()["x"] for n in ("extract", "transform", "load")}
    assert xs["extract"] < xs["transform"] < xs["load"]
    fill = "n => getComputedStyle(n.querySelector('rect')).fill"
    assert page.locator("a.gnode[data-name=transform]").evaluate(fill) == "rgb(236, 253, 243)"  # succeeded
    assert page.locator("a.gnode[data-name=report]").get_attribute("data-status") == "never"
    assert page.locator("a.gnode[data-name=report]").evaluate(fill) == "rgb(242, 244, 247)"
    assert page.locator("g.gedge.requires path").evaluate("p => getComputedStyle(p).strokeDasharray") != "none"
    assert page.text_content("#g-summary") == "4 schedules, 3 dependencies"
    shot = page.screenshot(full_page=True)
    (tmp_path / "graph.png").write_bytes(shot)
    assert png_size(shot)[0] == 1280
    assert len(shot) > 20_000  # a drawn page, not a blank one
    assert page.errors == []


def test_a_description_with_markup_is_shown_in_the_graph_as_text(page: Any, site: str) -> None:
    page.goto(site + "/#/graph")
    page.wait_for_selector("body[data-graph=drawn]")
    title = page.locator("a.gnode[data-name=extract] title").text_content()
    assert title.endswith("\n" + XSS)
    assert page.locator("#g-canvas script, #g-canvas img, #g-canvas foreignObject").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []


def test_clicking_a_node_opens_its_schedule_which_links_its_upstreams_and_downstreams(page: Any, site: str) -> None:
    page.goto(site + "/#/graph")
    page.wait_for_selector("body[data-graph=drawn]")
    page.click("a.gnode[data-name=transform]")
    wait_for(lambda: page.evaluate("location.hash") == "#/schedule/transform", timeout=10, what="the schedule page")
    page.wait_for_selector("#s-deps:not(.hidden)")
    assert page.text_content("#s-name") == "transform"
    assert page.locator("#s-upstreams a.dep").evaluate_all("as => as.map(a => a.textContent)") == ["extract"]
    assert page.locator("#s-downstreams a.dep").evaluate_all("as => as.map(a => a.textContent)") == ["load"]
    assert page.locator("#graph-view").is_hidden()
    page.click("#s-downstreams a.dep")
    wait_for(lambda: page.text_content("#s-name") == "load", timeout=10, what="the downstream's page")
    wait_for(lambda: page.locator("#s-downstreams a.dep").evaluate_all("as => as.map(a => a.textContent)")
             == ["report"], timeout=10, what="load's downstream: the schedule that requires it")
    page.goto(site + "/#/schedule/alone")
    page.wait_for_selector("body[data-loaded=true]")
    wait_for(lambda: page.text_content("#s-name") == "alone", timeout=10, what="a schedule without dependencies")
    assert page.locator("#s-deps").is_hidden()
    assert page.errors == []


def test_a_keyboard_user_opens_a_node_with_enter(page: Any, site: str) -> None:
    page.goto(site + "/#/graph")
    page.wait_for_selector("body[data-graph=drawn]")
    page.focus("a.gnode[data-name=load]")
    assert page.evaluate("document.activeElement.dataset.name") == "load"
    page.keyboard.press("Enter")
    wait_for(lambda: page.evaluate("location.hash") == "#/schedule/load", timeout=10, what="the schedule page")
    wait_for(lambda: page.text_content("#s-name") == "load", timeout=10, what="load's page")
    assert page.errors == []


def test_a_refresh_with_new_runs_recolours_in_place_and_the_focused_node_keeps_the_focus(page: Any, site: str) -> None:
    page.goto(site + "/#/graph")
    page.wait_for_selector("body[data-graph=drawn]")
    page.focus("a.gnode[data-name=extract]")
    layouts = page.evaluate("document.body.dataset.graphLayouts")
    seen = int(page.evaluate("document.body.dataset.graphRefreshes"))
    # extract runs every second, so each 5 s refresh brings new last runs.
    wait_for(lambda: int(page.evaluate("document.body.dataset.graphRefreshes")) >= seen + 2, timeout=20,
             what="two refreshes")
    assert page.evaluate("document.body.dataset.graphLayouts") == layouts == "1"
    assert page.evaluate("document.activeElement.dataset.name") == "extract"
    assert page.locator("a.gnode[data-name=extract]").get_attribute("class") == "gnode succeeded"
    assert page.errors == []
