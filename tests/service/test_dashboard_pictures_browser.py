"""The dashboard's pictures in a real headless Chromium (Debian's), over the real `reconciler` server
and a real SQLite ledger seeded with 1,000 schedules and 50,000 runs: the run strips, a schedule's
charts and countdown, and the fleet timeline, each photographed under the test's tmp dir."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from reconciler.core.policy import Pause
from reconciler.ledger.base import to_micros
from reconciler.ledger.sqlite import SqliteLedger
from tests.harness import Daemon, commit_all, init_repo, wait_for
from tests.service.test_dashboard_browser import chromium_page, png_size
from tests.service.test_http import api, free_port

SCHEDULES, RUNS_EACH = 1000, 50
XSS = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
GREEN, RED, AMBER = "rgb(18, 183, 106)", "rgb(217, 45, 32)", "rgb(247, 144, 9)"


class Site(NamedTuple):
    base: str
    now: datetime  # when the ledger was seeded and the daemon started
    statuses: dict[str, list[str]]  # each schedule's seeded run statuses, oldest first


def status_of(i: int, k: int) -> str:
    return "failed" if (i + k) % 10 == 0 else "skipped" if (i + k) % 17 == 0 else "succeeded"


def write_schedules(sched: Path, now: datetime) -> None:
    # Daily jobs at least an hour away, so nothing fires while the test looks (and each fires once in 24 h).
    for i in range(SCHEDULES - 4):
        hour = (now.hour + 2 + i % 20) % 24
        (sched / f"job-{i:04d}.yaml").write_text(
            f"name: job-{i:04d}\ndescription: job number {i}\nlabels: {{team: t{i % 7}}}\n"
            f"schedule: {{cron: '{i % 60} {hour} * * *'}}\nrun: {{command: [/bin/true]}}\n")
    minute = (now.minute + 30) % 60  # hourly ones, half an hour away from now
    (sched / "windowed.yaml").write_text(
        f"name: windowed\nschedule: {{cron: '{minute} * * * *'}}\nrun: {{command: [/bin/true]}}\n"
        "windows:\n  - {kind: allow, cron: '0 12 * * *', duration: 6h}\npolicy: {outside: skip}\n")
    (sched / "paused-job.yaml").write_text(
        f"name: paused-job\ndescription: '{XSS.replace(chr(39), chr(39) * 2)}'\n"
        f"schedule: {{cron: '{minute} * * * *'}}\nrun: {{command: [/bin/true]}}\n")
    hour = (now.hour + 3) % 24
    for name, m in (("heavy-a", 0), ("heavy-b", 10)):  # 40-minute runs, ten minutes apart: they overlap
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{cron: '{m} {hour} * * *'}}\nrun: {{command: [/bin/true]}}\n")


def seed(ledger: Path, now: datetime) -> dict[str, list[str]]:
    """50 runs of each schedule, an hour apart and in slot order (so ids follow slots), straight into
    the ledger's table: the daemon reads them as it reads its own."""
    SqliteLedger(ledger).close()  # the schema
    names = [f"job-{i:04d}" for i in range(SCHEDULES - 4)] + ["windowed", "paused-job", "heavy-a", "heavy-b"]
    statuses: dict[str, list[str]] = {n: [] for n in names}
    rows = []
    for k in range(RUNS_EACH):
        slot = now - timedelta(hours=RUNS_EACH - k, minutes=-30)  # the newest half an hour ago
        for i, name in enumerate(names):
            status = status_of(i, k)
            statuses[name].append(status)
            seconds = 2400.0 if name.startswith("heavy") else 0.5 + (i + k) % 20
            start = to_micros(slot)
            ran = status != "skipped"
            code = (1 if status == "failed" else 0) if ran else None
            end = start + int(seconds * 1e6) if ran else start
            rows.append((name, start, status, start if ran else None, end, code,
                         (20 + (i + k) % 30) * 1048576 if ran else None, seconds / 4 if ran else None,
                         seconds / 8 if ran else None, "r0", "ok" if ran else None,
                         "the previous run still ran" if not ran else None))
    with sqlite3.connect(ledger) as db:
        db.executemany(
            "INSERT INTO runs (schedule, slot, attempt, trigger, status, started_at, finished_at, exit_code, "
            "peak_memory, cpu_user, cpu_system, revision, output, error) "
            "VALUES (?, ?, 1, 'schedule', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    led = SqliteLedger(ledger)
    try:
        led.pause(Pause("paused-job", by="ops", at=now, reason=f"migration {XSS}", until=now + timedelta(hours=5)))
    finally:
        led.close()
    return statuses


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("pictures")
    sched = tmp / "schedules"
    init_repo(sched)
    now = datetime.now(UTC)
    write_schedules(sched, now)
    commit_all(sched, "1,000 schedules")
    statuses = seed(tmp / "ledger.db", now)
    port = free_port()
    d = Daemon(sched, tmp, "--listen", f"127.0.0.1:{port}")
    d.wait_event("http.listening", timeout=60)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: api(base, "/api/v1/overview")["total"] == SCHEDULES, timeout=60, what="the revision to apply")
    yield Site(base, now, statuses)
    assert d.stop() == 0


@pytest.fixture
def page(site: Site) -> Iterator[Any]:
    with chromium_page(console_errors=True, viewport={"width": 1400, "height": 1000}, locale="en-US",
                       timezone_id="America/Los_Angeles") as pg:
        yield pg


def shoot(page: Any, path: Path) -> None:
    shot = page.screenshot(full_page=True)
    path.write_bytes(shot)
    assert png_size(shot)[0] == 1400
    assert len(shot) > 20_000  # a rendered page, not a blank one


def test_the_overview_shows_a_coloured_strip_of_the_last_40_runs_for_each_schedule(page: Any, site: Site,
                                                                                  tmp_path: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(site.base + "/")
    page.wait_for_selector("#schedules[data-strips=loaded]")
    rows = page.locator("#schedules tbody tr")
    assert rows.count() == 50
    counts = page.locator("#schedules tbody tr .strip").evaluate_all("s => s.map(x => x.children.length)")
    assert counts == [40] * 50
    # The colours are the statuses', in order, oldest first, for a schedule of the page.
    colours = page.locator("tr[data-name=job-0003] .strip .cell").evaluate_all(
        "cs => cs.map(c => getComputedStyle(c).backgroundColor)")
    expected = [{"succeeded": GREEN, "failed": RED, "skipped": AMBER}[s] for s in site.statuses["job-0003"][-40:]]
    assert colours == expected
    assert {RED, AMBER} <= set(colours)  # the seed has both in this window
    assert sum("/api/v1/strips" in u for u in requests) == 1  # one call for the whole page, not one per row
    shoot(page, tmp_path / "overview-strips.png")
    assert page.errors == []


def test_hovering_or_focusing_a_run_tells_its_slot_status_duration_and_exit_and_a_click_opens_it(
        page: Any, site: Site) -> None:
    page.goto(site.base + "/")
    page.wait_for_selector("#schedules[data-strips=loaded]")
    cells = page.locator("tr[data-name=job-0000] .strip .cell")
    newest = cells.nth(39)
    newest.hover()
    tip = page.locator("#strip-tip")
    assert tip.is_visible()
    text = tip.text_content()
    assert re.search(r"job-0000 · slot \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", text)
    assert f"status {site.statuses['job-0000'][-1]}" in text
    assert "duration " in text
    assert "exit " in text
    page.mouse.move(0, 0)
    assert not tip.is_visible()
    newest.focus()  # the keyboard: the newest run is the strip's one tab stop, arrows move along it
    assert tip.is_visible()
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.run") == cells.nth(38).get_attribute("data-run")
    assert f"status {site.statuses['job-0000'][-2]}" in tip.text_content()
    run = cells.nth(38).get_attribute("data-run")
    updated = page.text_content("#updated")
    wait_for(lambda: page.text_content("#updated") != updated, timeout=10, what="a refresh to rebuild the table")
    wait_for(lambda: page.evaluate("document.activeElement.dataset.run") == run, timeout=5,
             what="the focus to stay on the run across the refresh")
    page.keyboard.press("Enter")
    page.wait_for_selector("#output-box:not(.hidden)")
    assert page.evaluate("location.hash") == f"#/schedule/job-0000/run/{cells.nth(38).get_attribute('data-run')}"
    assert page.errors == []


def test_a_schedule_shows_duration_memory_and_cpu_charts_with_failures_marked_rates_and_a_countdown(
        page: Any, site: Site, tmp_path: Path) -> None:
    page.goto(site.base + "/#/schedule/job-0005")
    page.wait_for_selector("#s-pictures[data-loaded=true]")
    page.wait_for_selector("#p-duration canvas")
    page.wait_for_selector("#p-memory canvas")
    seeded = site.statuses["job-0005"]
    # Every seeded run is a point; the failed ones are marked on both charts.
    duration = page.evaluate("(() => { const d = window.reconcilerCharts.duration.data; "
                             "return [d[0].length, d[3].filter(v => v !== null).length]; })()")
    assert duration == [RUNS_EACH, seeded.count("failed")]
    memory = page.evaluate("(() => { const d = window.reconcilerCharts.memory.data; "
                           "return [d[1].filter(v => v !== null).length, d[2].filter(v => v !== null).length]; })()")
    assert memory == [RUNS_EACH - seeded.count("skipped"), seeded.count("failed")]
    ended = [s for s in seeded[-24:] if s != "skipped"]  # hourly runs: the last 24 are the last 24 hours'
    rate = page.text_content("[data-rate='24 h']")
    assert f"{ended.count('succeeded')} of {len(ended)} ended runs succeeded" in rate
    assert f"{100 * ended.count('succeeded') / len(ended):.1f} %" in rate
    # All 50 runs are within 7 days; skipped runs never ran, so they are not ended runs.
    assert f"of {RUNS_EACH - seeded.count('skipped')} ended runs" in page.text_content("[data-rate='7 d']")
    countdown = page.locator("#p-upcoming .countdown.next")
    first = countdown.text_content()
    assert re.fullmatch(r"in \d{2}:\d{2}:\d{2}", first)
    wait_for(lambda: countdown.text_content() != first, timeout=5, what="the countdown to tick")
    assert page.locator("#p-graph").is_hidden()  # the dependency graph's place, empty for now
    shoot(page, tmp_path / "schedule-charts.png")
    assert page.errors == []


def test_the_timeline_shows_the_next_24_hours_with_skipped_slots_and_heavy_overlaps(page: Any, site: Site,
                                                                                   tmp_path: Path) -> None:
    page.goto(site.base + "/#/timeline")
    page.wait_for_selector("#timeline-view[data-loaded=true]")
    view = page.locator("#timeline-view")
    # 996 daily jobs and two heavy ones once each; two hourly ones 24 times each.
    assert view.get_attribute("data-slots") == str(SCHEDULES - 4 + 2 + 24 * 2)
    assert view.get_attribute("data-lanes") == str(SCHEDULES)
    points = page.evaluate("window.reconcilerCharts.timeline.data.slice(1).map(s => s.filter(v => v !== null).length)")
    assert sum(points) == SCHEDULES - 4 + 2 + 24 * 2
    # Skipped: the windowed job outside 12:00-18:00 UTC (18 of 24), the paused one for 5 hours.
    skipped_rows = page.locator("#t-skipped tbody tr")
    by = skipped_rows.evaluate_all("rs => rs.map(r => r.dataset.schedule)")
    assert by.count("windowed") == 18
    times = skipped_rows.locator("td:first-child").evaluate_all("ts => ts.map(t => t.textContent)")
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:00 UTC", t) for t in times), times
    assert by.count("paused-job") == 5  # it fires half an hour after each hour from now; paused for 5 h
    assert points[1] == len(by) == int(view.get_attribute("data-skipped"))
    assert XSS in page.text_content("#t-skipped")  # the pause's reason, as text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#t-skipped script, #t-skipped img").count() == 0
    assert "2 heavy jobs" in page.text_content("#t-overlap")
    assert points[3] == 2  # both heavy runs, each overlapping the other
    assert page.locator("#t-truncated").is_hidden()
    shoot(page, tmp_path / "timeline.png")
    page.select_option("#t-hours", "168")  # a week of 1,000 schedules is more than the bound computes
    wait_for(lambda: "Not every slot is shown" in (page.text_content("#t-truncated") or ""), timeout=20,
             what="the truncation note")
    assert page.locator("#t-truncated").is_visible()
    assert view.get_attribute("data-slots") == "5000"
    page.fill("#t-zone", "Asia/Tokyo")
    wait_for(lambda: "Asia/Tokyo" in (page.text_content("#t-summary") or ""), timeout=20, what="the zone")
    assert page.evaluate("window.reconcilerCharts.timeline.axes[0].label") == "Asia/Tokyo"  # drawn anew
    shoot(page, tmp_path / "timeline-week-tokyo.png")
    assert page.errors == []


def test_a_pause_reason_and_a_description_with_markup_stay_text_in_the_schedules_pictures(page: Any,
                                                                                          site: Site) -> None:
    page.goto(site.base + "/#/schedule/paused-job")
    page.wait_for_selector("#s-pictures[data-loaded=true]")
    skipped = page.locator("#p-upcoming li.skipped")
    assert skipped.count() == 5  # its next five hourly slots fall in the five-hour pause
    assert XSS in skipped.first.text_content()
    assert page.text_content("#s-desc") == XSS
    assert page.locator("#s-pictures script, #s-pictures img, #s-desc script, #s-desc img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []
