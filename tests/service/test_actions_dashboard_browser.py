"""Operator actions on the dashboard, in a real headless Chromium: a token pasted into the page,
trigger, pause with a reason and resume, bulk pause by selector with a confirmation, the activity
list with the token's name, a schedule's git changes interleaved with its runs, and read-only
modes in which no button works."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Commit, Outcome, SpecChange
from tests.harness import Daemon, wait_for
from tests.service.test_dashboard_browser import chromium_page  # skips this module without chromium
from tests.service.test_http import api, free_port, get

OPS, VIEWER = "operate-token-0123456789", "read-only-token-0123456789"
PAYLOAD = "<img src=x onerror=\"window.__pwned = 1\">vendor <b>outage</b>"


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as pg:
        yield pg


def serve(tmp_path: Path, started: list[Daemon], *args: str) -> tuple[str, Daemon]:
    sched = tmp_path / "schedules"
    sched.mkdir()
    for name, labels in (("job", "{team: data}"), ("other", "{team: data}"), ("web", "{team: web}")):
        (sched / f"{name}.yaml").write_text(f"name: {name}\nlabels: {labels}\n"
                                            "schedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n")
    port = free_port()
    d = Daemon(sched, tmp_path, "--listen", f"127.0.0.1:{port}", *args)
    started.append(d)
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: get(base + "/readyz")[0] == 200, what="the first revision")
    return base, d


def tokens(tmp_path: Path) -> str:
    path = tmp_path / "tokens"
    path.write_text(f"# who may do what\ndana operate {OPS}\ngrafana read {VIEWER}\n")
    return str(path)


def use_token(page: Any, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#token-use")
    page.wait_for_selector("#token-name")


def test_trigger_pause_and_resume_through_the_page_are_listed_as_the_tokens_activity(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    base, _ = serve(tmp_path, started, "--token-file", tokens(tmp_path))
    page.goto(base + "/#/schedule/job")
    page.wait_for_selector("body[data-actions=ready]")
    assert page.is_disabled("#a-trigger")
    assert "Paste an operate token" in page.text_content("#a-why")
    use_token(page, OPS)
    assert page.text_content("#token-name") == "token dana (operate)"
    page.wait_for_selector("#a-trigger:enabled")  # (not wait_for_function: the CSP forbids eval)
    assert page.text_content("#a-why") == ""

    page.click("#a-trigger")
    page.wait_for_selector("#a-result:text-is('Run started.')")
    wait_for(lambda: api(base, "/api/v1/runs?schedule=job")["items"], what="the manual run")
    page.fill("#a-reason", PAYLOAD)
    page.fill("#a-expiry", "2h")
    page.click("#a-pause")
    page.wait_for_selector("#a-result:has-text('Paused until')")
    [paused] = api(base, "/api/v1/pauses")["items"]
    assert (paused["schedule"], paused["by"], paused["reason"]) == ("job", "dana", PAYLOAD)
    page.fill("#a-reason", "")
    page.click("#a-resume")
    page.wait_for_selector("#a-result:text-is('Resumed.')")
    assert api(base, "/api/v1/pauses")["items"] == []
    page.wait_for_selector("#s-history tr[data-kind=action] >> nth=2")
    assert page.locator("#s-history tr[data-kind=run]").count() >= 1

    page.goto(base + "/#/")
    page.wait_for_selector("#activity tr[data-activity]")
    rows = page.locator("#activity tr[data-activity]")
    assert rows.count() == 3
    assert [rows.nth(i).locator(".what").text_content() for i in range(3)] == ["resume", "pause", "trigger"]
    assert {rows.nth(i).locator(".who").text_content() for i in range(3)} == {"dana"}
    assert rows.nth(1).locator(".reason").text_content() == PAYLOAD  # as text, never as markup
    assert page.locator("#activity img").count() == 0
    assert page.evaluate("window.__pwned") is None
    # The token lives in this tab's sessionStorage only: not in the URL, localStorage or a cookie.
    assert page.evaluate("sessionStorage.getItem('reconciler.token')") == OPS
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert OPS not in page.url
    assert page.errors == []


def test_a_bulk_pause_is_confirmed_after_a_preview_of_the_schedules_it_chooses(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    base, _ = serve(tmp_path, started, "--token-file", tokens(tmp_path))
    page.goto(base + "/#/")
    page.wait_for_selector("body[data-actions=ready]")
    use_token(page, OPS)
    page.fill("#b-selector", "team=data")
    page.fill("#b-reason", "migration")
    page.wait_for_selector("#b-preview-pause:enabled")
    page.click("#b-preview-pause")
    page.wait_for_selector("#b-step:not(.hidden)")
    assert page.locator("#b-list li").all_text_contents() == ["job", "other"]
    assert api(base, "/api/v1/pauses")["items"] == []  # nothing yet: a preview only
    page.click("#b-confirm")
    page.wait_for_selector("#b-result:text-is('Paused 2 schedules.')")
    paused = [(p["schedule"], p["by"]) for p in api(base, "/api/v1/pauses")["items"]]
    assert paused == [("job", "dana"), ("other", "dana")]
    page.wait_for_selector("#activity tr[data-activity] .what:text-is('bulk pause')")
    assert page.errors == []


@pytest.mark.parametrize(("args", "token", "why"), [
    ((), None, "Read-only: the server was started without an operate token"),
    (("tokens",), VIEWER, "The token grafana may only read"),
    (("tokens",), None, "Paste an operate token above"),
])
def test_without_an_operate_token_no_button_works_and_each_says_why(
        page: Any, tmp_path: Path, started: list[Daemon], args: tuple[str, ...], token: str | None, why: str) -> None:
    base, _ = serve(tmp_path, started, *(("--token-file", tokens(tmp_path)) if args else ()))
    for route, note in (("/#/schedule/job", "#a-why"), ("/#/", "#b-why")):
        page.goto(base + route)
        page.wait_for_selector("body[data-actions=ready]")
        if token and page.locator("#token-input").count():
            use_token(page, token)
            page.wait_for_selector(f"{note}:has-text('may only read')")
        assert why in page.text_content(note)
        buttons = page.locator("button[data-action]")
        assert buttons.count() >= 2
        for i in range(buttons.count()):
            assert buttons.nth(i).is_disabled()
            assert why in (buttons.nth(i).get_attribute("title") or "")
    assert api(base, "/api/v1/activity")["items"] == []
    assert page.errors == []


def test_a_schedules_page_interleaves_its_git_changes_with_its_runs_and_marks_where_it_started_failing(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    base, d = serve(tmp_path, started)
    now = datetime.now(UTC)
    ledger = open_ledger(d.ledger)
    try:
        for minutes, status in ((-30, RunStatus.SUCCEEDED), (-10, RunStatus.FAILED)):
            at = now + timedelta(minutes=minutes)
            ledger.record("job", at, attempt=1, cause=Cause.MANUAL, revision="r",
                          outcome=Outcome(status, at + timedelta(seconds=1), exit_code=int(status == "failed")),
                          started_at=at)
        dana = Commit("abc1234567890" + "0" * 27, "Dana <i>", "dana@example.invalid", now - timedelta(minutes=21),
                      "shorter <b>timeout</b>")
        ledger.record_audit(10**6, dana.sha, now - timedelta(minutes=20), dana,
                            [SpecChange("job", "change", ({"path": "run.timeout", "old": "10m", "new": "1m"},))])
    finally:
        ledger.close()
    page.goto(base + "/#/schedule/job")
    page.wait_for_selector("#s-history tr[data-kind=change]")
    rows = page.locator("#s-history tbody tr")
    # Newest first: the daemon's own revision (it added `job` at start), then the failure that came
    # right after Dana's change, then the success before it.
    assert [rows.nth(i).get_attribute("data-kind") for i in range(rows.count())] == ["change", "run", "change", "run"]
    change = rows.nth(2)
    text = change.text_content() or ""
    assert "abc123456789" in text
    assert "by Dana <i>: shorter <b>timeout</b>" in text
    assert 'run.timeout: "10m" → "1m"' in text
    assert "from succeeded to failed right after this change" in text
    assert change.locator("b, i").count() == 0
    assert page.errors == []


def test_a_server_that_requires_a_token_to_read_shows_its_data_once_a_token_is_pasted(
        page: Any, tmp_path: Path, started: list[Daemon]) -> None:
    base, _ = serve(tmp_path, started, "--token-file", tokens(tmp_path), "--read-token-required")
    page.goto(base + "/")
    page.wait_for_selector("#token-bar:has-text('requires a token to read')")
    assert page.locator("body[data-loaded=true]").count() == 0
    use_token(page, VIEWER)
    page.wait_for_selector("body[data-loaded=true]")  # the next refresh sends the token
    assert page.locator("#schedules tr[data-name=job]").count() == 1
    assert page.is_disabled("#b-preview-pause")
