"""What windows and calendars do to the next fire times, on the dashboard, in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, wait_for
from tests.service.test_dashboard_browser import chromium_page  # skips this module without chromium
from tests.service.test_http import api, free_port


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as pg:
        yield pg


def test_the_list_and_the_detail_say_which_next_fire_times_a_calendar_or_a_window_skips(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    (sched / "calendars").mkdir(parents=True)
    (sched / "calendars" / "every-day.yaml").write_text("weekdays: [mon, tue, wed, thu, fri, sat, sun]\n")
    job = "schedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"
    (sched / "closed.yaml").write_text(f"name: closed\n{job}calendar: {{exclude: [every-day]}}\n")
    (sched / "denied.yaml").write_text(f"name: denied\n{job}windows: [{{kind: deny, cron: '0 0 * * *', "
                                       "duration: 24h}]\n")
    (sched / "plain.yaml").write_text(f"name: plain\n{job}")
    port = free_port()
    d = Daemon(sched, tmp_path, "--listen", f"127.0.0.1:{port}")
    started.append(d)
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: api(base, "/api/v1/status")["ready"], what="the first revision")
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    assert "· skipped: calendar every-day (" in page.text_content("#schedules tr[data-name=closed] td.next")
    assert "· skipped: window: inside window 1" in page.text_content("#schedules tr[data-name=denied] td.next")
    assert "skipped" not in page.text_content("#schedules tr[data-name=plain] td.next")
    page.goto(base + "/#/schedule/closed")
    page.wait_for_selector("#s-upcoming li")
    items = page.locator("#s-upcoming li").all_text_contents()
    assert items
    assert all("skipped: calendar every-day (" in i for i in items)
    assert page.errors == []
