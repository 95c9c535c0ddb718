"""Notifications: which events a run raises, and delivery by the real daemon to a real webhook."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reconciler.core.model import EnvValue, Notify
from reconciler.core.policy import RunStatus, events_for, wanted
from tests.core.test_loader import problems
from tests.harness import Daemon, local_server, wait_for


def target(*events: str, every: bool = False) -> Notify:
    return Notify(EnvValue(literal="http://x.test/"), frozenset(events), every, (), timedelta(seconds=5))


@pytest.mark.parametrize(("status", "was_failing", "events", "every", "told"), [
    ("failed", False, ("failure",), False, "failure"),
    ("failed", True, ("failure",), False, None),  # once per failing streak
    ("failed", True, ("failure",), True, "failure"),  # unless every failure is asked for
    ("timed_out", False, ("failure",), False, "failure"),
    ("succeeded", True, ("failure", "recovery"), False, "recovery"),
    ("succeeded", False, ("failure", "recovery"), False, None),
    ("succeeded", False, ("success",), False, "success"),
    ("succeeded", True, ("success", "recovery"), False, "recovery"),
    ("missed", False, ("missed",), False, "missed"),
    ("skipped", False, ("failure", "success", "missed"), False, None),
])
def test_which_event_a_target_is_told(status: str, was_failing: bool, events: tuple[str, ...], every: bool,
                                      told: str | None) -> None:
    assert wanted(target(*events, every=every), events_for(RunStatus(status), was_failing)) == told


def test_notify_entries_are_validated() -> None:
    base = "name: n\nschedule: {every: 1m}\nrun: {command: [/bin/true]}\n"
    found = [m for *_, m in problems(base + "notify: [{url: 'ftp://x', events: [failure, sometimes]}]\n")]
    assert any("an http(s) URL" in m or "is not valid under any" in m for m in found), found
    assert any("'sometimes' is not one of" in m for m in found), found
    assert problems(base + "notify: [{url: {from_env: HOOK}, events: [failure, recovery]}]\n") == []


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any], dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Hook.received.append((self.path, body, dict(self.headers)))
        self.send_response(500 if self.path == "/broken" else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received.clear()
    with local_server(Hook) as url:
        yield url


def got(path: str) -> list[dict[str, Any]]:
    return [body for p, body, _ in Hook.received if p == path]


def test_a_failing_streak_is_told_once_then_its_recovery(tmp_path: Path, hook: str) -> None:
    sched = tmp_path / "s"
    sched.mkdir()
    spec = ("name: flaky\nschedule: {every: 1s}\nrun: {command: [/bin/sh, -c, 'echo tail-of-output; exit 3']}\n"
            f"notify:\n  - url: {hook}/streak\n    events: [failure, recovery]\n"
            f"  - url: {{from_env: EVERY_HOOK}}\n    events: [failure]\n    every_failure: true\n"
            "    headers: {X-Token: {from_env: HOOK_TOKEN}}\n"
            f"  - url: {hook}/broken\n")
    (sched / "a.yaml").write_text(spec)
    d = Daemon(sched, tmp_path, "--listen", "none", "--public-url", "https://reconciler.example.com",
               env={"EVERY_HOOK": f"{hook}/every", "HOOK_TOKEN": "hook-secret"})
    try:
        wait_for(lambda: len(got("/every")) >= 3, timeout=20, what="three failures told to /every")
        assert len(got("/streak")) == 1
        first = got("/streak")[0]
        assert {k: first[k] for k in ("event", "schedule", "status", "attempt", "exit_code")} == {
            "event": "failure", "schedule": "flaky", "status": "failed", "attempt": 1, "exit_code": 3}
        assert first["output_tail"] == "tail-of-output\n"
        assert first["revision"].startswith("content:")
        assert first["url"] == f"https://reconciler.example.com/#/schedule/flaky/run/{first['run_id']}"
        assert first["duration_seconds"] >= 0
        assert all(h.get("X-Token") == "hook-secret" for p, _, h in Hook.received if p == "/every")
        d.wait_event("notify.failed", on="failure", timeout=20)  # /broken answers 500 three times

        (sched / "a.yaml").write_text(spec.replace("exit 3", "exit 0"))
        wait_for(lambda: any(b["event"] == "recovery" for b in got("/streak")), timeout=20, what="recovery")
        assert [b["event"] for b in got("/streak")] == ["failure", "recovery"]
        sent = d.events("notify.sent")
        assert all({"schedule", "run_id", "revision", "slot"} <= set(e) for e in sent)
    finally:
        assert d.stop() == 0
