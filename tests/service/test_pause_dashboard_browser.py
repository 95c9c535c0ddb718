"""An operator's pause on the dashboard, in a real headless Chromium."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import EXE, Daemon, wait_for
from tests.service.test_dashboard_browser import chromium_page  # skips this module without chromium
from tests.service.test_http import api, free_port


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as pg:
        yield pg


def test_a_paused_schedule_shows_a_tag_with_who_why_and_until_and_its_skipped_upcoming_slots(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    for name in ("held", "free"):
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{cron: '0 2 * * *'}}\nrun: {{command: [/bin/true]}}\n")
    port = free_port()
    d = Daemon(sched, tmp_path, "--listen", f"127.0.0.1:{port}")
    started.append(d)
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: api(base, "/api/v1/status")["ready"], what="the first revision")
    wait_for(lambda: subprocess.run([EXE, "pause", "held", "--reason", "vendor <b>outage</b>", "--for", "3d",
                                     "--ledger", str(d.ledger)], capture_output=True, timeout=60,
                                    check=False).returncode == 0, what="the pause to be recorded")
    page.goto(base + "/")
    page.wait_for_selector("body[data-loaded=true]")
    tag = page.locator("#schedules tr[data-name=held] .tag.paused")
    assert tag.text_content() == "paused"
    assert "vendor <b>outage</b>" in (tag.get_attribute("title") or "")  # as text, never as markup
    assert page.locator("#schedules tr[data-name=free] .tag.paused").count() == 0
    page.goto(base + "/#/schedule/held")
    page.wait_for_selector("#s-facts dt:text-is('Paused')")
    assert "until 20" in page.text_content("#s-facts")
    assert "skipped: paused by" in page.text_content("#s-upcoming li")
    assert page.errors == []
