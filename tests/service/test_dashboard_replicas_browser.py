"""The dashboard's replicas in a real headless Chromium: the replicas table, and the replica that ran
a run on its page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.service.test_dashboard_browser import page, site
from tests.service.test_http import api

__all__ = ["page", "site"]  # the fixtures: a daemon serving the dashboard, and a browser page


def test_the_overview_lists_the_replicas_and_a_run_page_names_its_replica(page: Any, site: tuple[str, Path]) -> None:
    base, _ = site
    (replica,) = api(base, "/api/v1/replicas")["replicas"]
    page.goto(base + "/")
    row = page.wait_for_selector(f"#replicas tbody tr[data-replica='{replica['id']}']")
    text = row.text_content()
    assert "alive" in text
    assert "s ago" in text
    run = api(base, "/api/v1/runs?schedule=failing-job&status=failed&limit=1")["items"][0]
    page.goto(base + f"/#/schedule/failing-job/run/{run['id']}")
    page.wait_for_selector("#output-box:not(.hidden)")
    assert page.text_content("#run-replica") == f"ran on replica {replica['id']}"
    assert not page.errors
