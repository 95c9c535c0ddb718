"""The dashboard in a real headless Chromium (Debian's; .ci/run installs it)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.harness import EXE, Daemon, commit_all, init_repo, wait_for
from tests.service.test_http import api, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if CHROMIUM is None:
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (CI installs it; apt-get install chromium)", allow_module_level=True)

XSS = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
# The one format of every time on the page, labelled with the schedule's zone or UTC.
TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (UTC|Europe/Berlin)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("dash")
    sched = tmp / "schedules"
    init_repo(sched)  # as in production: the revision is a commit
    (sched / "a.yaml").write_text(
        "name: html-printer\ndescription: 'description with <b>markup</b>'\nlabels: {team: web}\n"
        "schedule: {every: 1s}\nrun: {command: [/bin/echo, '" + XSS.replace("'", "''") + "']}\n")
    (sched / "b.yaml").write_text("name: failing-job\nschedule: {every: 2s}\nrun: {command: [/bin/false]}\n")
    for i in range(3):
        (sched / f"n{i}.yaml").write_text(f"name: nightly-{i}\nschedule: {{cron: '{i} 2 * * *', "
                                          "timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n")
    commit_all(sched, "schedules")
    port = free_port()
    d = Daemon(sched, tmp, "--listen", f"127.0.0.1:{port}")
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: api(base, "/api/v1/overview")["recent_failures"], what="a failure to show")
    yield base, sched
    assert d.stop() == 0


@contextmanager
def chromium_page(*, console_errors: bool = False, **options: Any) -> Iterator[Any]:
    """A page of Debian's Chromium (never a downloaded one). Its `errors` lists the page's uncaught
    errors, and with `console_errors` its console errors too, for the tests to read."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pg = browser.new_page(**{"viewport": {"width": 1280, "height": 900}, **options})
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            if console_errors:
                pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.errors = errors  # type: ignore[attr-defined]  # read by the tests
            yield pg
        finally:
            browser.close()


@pytest.fixture
def page(site: tuple[str, Path]) -> Iterator[Any]:
    # A locale and a zone unlike UTC's: nothing on the page may follow them.
    with chromium_page(console_errors=True, locale="en-US", timezone_id="America/Los_Angeles") as pg:
        yield pg


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_overview_renders_and_its_screenshot_shows_the_page(page: Any, site: tuple[str, Path],
                                                               tmp_path: Path) -> None:
    base, _ = site
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.text_content("[data-count=active] b") == "5"
    assert page.locator("#failures tbody tr").first.text_content().count("failing-job") == 1
    assert page.locator("#schedules tbody tr").count() == 5
    commit = subprocess.run(["git", "-C", str(site[1]), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert page.text_content("#revision").startswith(f"revision {commit[:12]} · applied ")
    shot = page.screenshot(full_page=True)
    (tmp_path / "overview.png").write_bytes(shot)
    width, height = png_size(shot)
    assert width == 1280
    assert height >= 600
    assert len(shot) > 20_000  # a rendered page, not a blank one
    assert page.errors == []


def test_job_output_and_descriptions_with_markup_are_shown_as_text(page: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    run_id = api(base, "/api/v1/runs?schedule=html-printer&status=succeeded&limit=1")["items"][0]["id"]
    page.goto(f"{base}/#/schedule/html-printer/run/{run_id}")
    page.wait_for_selector("#output-box:not(.hidden)")
    assert page.text_content("#output").strip() == XSS
    assert page.text_content("#s-desc") == "description with <b>markup</b>"
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#output script, #output img, #s-desc b").count() == 0
    # Only our own scripts: the libraries, the page's, the pictures' and the graph's.
    assert page.evaluate("[...document.scripts].map(s => s.getAttribute('src'))") == [
        "/vendor/uPlot.iife.min.js", "/dashboard.js", "/charts.js", "/vendor/dagre.min.js", "/graph.js"]


def test_search_filter_and_sort(page: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    page.fill("#q", "nightly")
    wait_for(lambda: page.locator("#schedules tbody tr").count() == 3, what="the search to filter")
    names = page.locator("#schedules tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["nightly-0", "nightly-1", "nightly-2"]
    page.click("th button[data-sort=name]")
    wait_for(lambda: page.locator("#schedules tbody tr").first.get_attribute("data-name") == "nightly-2",
             what="descending order")
    page.fill("#q", "")
    page.select_option("#last-status", "failed")
    wait_for(lambda: page.locator("#schedules tbody tr").count() == 1, what="the status filter")
    assert page.locator("#schedules tbody tr").first.get_attribute("data-name") == "failing-job"


def test_a_rejected_revision_shows_a_banner_with_file_and_line(page: Any, site: tuple[str, Path]) -> None:
    base, sched = site
    bad = sched / "zz-bad.yaml"
    bad.write_text("name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [/bin/true]}\n")
    try:
        page.goto(base + "/")
        page.wait_for_selector("#banner:not(.hidden)", timeout=15000)
        text = page.text_content("#banner")
        assert "was rejected" in text
        assert "zz-bad.yaml:2:" in text
        assert "can never fire" in text
        assert page.text_content("[data-count=active] b") == "5"  # the old revision keeps running
    finally:
        bad.unlink()
    page.wait_for_selector("#banner.hidden", state="attached", timeout=15000)


def test_a_rejected_working_tree_is_shown_apart_from_the_commit_that_runs_with_when_it_was_first_seen(
        page: Any, site: tuple[str, Path]) -> None:
    base, sched = site
    status = api(base, "/api/v1/status")
    applied = status["applied"]["revision"]
    bad = sched / "zz-bad.yaml"
    bad.write_text("name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [/bin/true]}\n")
    try:
        rejected = wait_for(lambda: api(base, "/api/v1/status")["attempted"]["rejected"]
                            and api(base, "/api/v1/status")["attempted"], what="the rejection")
        assert rejected["revision"].startswith(f"{applied}+dirty.")
        page.goto(base + "/")
        page.wait_for_selector("#banner:not(.hidden)", timeout=15000)
        shown = page.text_content("#rejected code")
        assert shown == f"{applied[:12]}+dirty.{rejected['revision'].rsplit('.', 1)[1]}"
        assert page.get_attribute("#rejected code", "title") == rejected["revision"]
        assert page.text_content("#still-running code") == applied[:12]
        assert page.text_content("#revision code") == applied[:12]
        seen = page.locator("#banner time")
        assert seen.get_attribute("datetime") == rejected["at"]
        assert TIME.fullmatch(seen.text_content())
        assert seen.text_content().endswith(" UTC")
        assert "first seen" in page.text_content("#banner")
    finally:
        bad.unlink()
    page.wait_for_selector("#banner.hidden", state="attached", timeout=15000)


def dates_on(page: Any) -> tuple[list[str], str]:
    """Every <time> element's text, and the page's visible text."""
    return page.locator("time").all_text_contents(), page.inner_text("body")


def test_every_time_on_the_dashboard_has_one_format_labelled_with_the_schedules_zone_or_utc(
        page: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    times, text = dates_on(page)
    assert len(times) >= 10
    assert all(TIME.fullmatch(t) for t in times), times
    assert not re.search(r"\d{1,2}/\d{1,2}/\d{2,4}|\b[AP]M\b|\d{4}-\d{2}-\d{2}T", text), text
    nightly = page.locator("#schedules tr[data-name=nightly-0] td.next time").text_content()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} 02:00:00 Europe/Berlin", nightly)  # cron '0 2 * * *' in its zone
    assert page.locator("#schedules tr[data-name=html-printer] td.next time").text_content().endswith(" UTC")
    assert page.locator("#schedules tr[data-name=html-printer] td.last time").text_content().endswith(" UTC")
    assert page.locator("#failures time").first.text_content().endswith(" UTC")
    assert TIME.fullmatch(page.text_content("#updated time"))

    page.goto(base + "/#/schedule/nightly-0")
    page.wait_for_selector("#s-upcoming li time")
    times, text = dates_on(page)
    assert all(TIME.fullmatch(t) for t in times), times
    assert not re.search(r"\d{1,2}/\d{1,2}/\d{2,4}|\b[AP]M\b|\d{4}-\d{2}-\d{2}T", text), text
    upcoming = page.locator("#s-upcoming li").all_text_contents()
    assert len(upcoming) == 5
    for line in upcoming:  # in its zone, then in UTC (01:00 in winter, 00:00 in summer)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} 02:00:00 Europe/Berlin · \d{4}-\d{2}-\d{2} 0[01]:00:00 UTC", line)


def test_last_run_shows_a_run_that_reconciler_trigger_made_beside_the_daemon(
        page: Any, site: tuple[str, Path]) -> None:
    base, sched = site
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    row = "#schedules tr[data-name=nightly-2] td.last"
    assert page.text_content(row) == "never"
    r = subprocess.run([EXE, "trigger", "nightly-2", "--dir", str(sched), "--ledger", str(sched.parent / "ledger.db")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    page.wait_for_selector(f"{row} .status:text-is('succeeded')", timeout=15000)  # the next 5 s refresh
    assert page.text_content(f"{row} time").endswith(" Europe/Berlin")
    page.goto(base + "/#/schedule/nightly-2")
    page.wait_for_selector("#s-facts .status")
    assert "succeeded" in page.text_content("#s-facts")


def test_the_page_refreshes_its_data_without_a_reload(page: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    page.goto(base + "/#/schedule/failing-job")
    page.wait_for_selector("#s-runs tbody tr[data-run]")
    page.evaluate("window.__still_here = true")
    first = page.locator("#s-runs tbody tr[data-run]").first.get_attribute("data-run")
    wait_for(lambda: page.locator("#s-runs tbody tr[data-run]").first.get_attribute("data-run") != first,
             timeout=15, what="a newer run to appear")
    assert page.evaluate("window.__still_here") is True
