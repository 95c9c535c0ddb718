"""Time rules with a real daemon, beyond tests/service/test_windows_daemon.py: an allow window, an
`only` calendar, `manual:` for a trigger through the API, and a backfill beside the daemon that
records a calendar's skips as the daemon does. Seconds-scale `every:` schedules and windows."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import Daemon, wait_for
from tests.service.test_http import post
from tests.service.test_windows_daemon import SECOND, rows, schedule

Run = Callable[..., subprocess.CompletedProcess[str]]
TOKEN = "time-rules-token-0123456789"
ALWAYS_DENIED = "windows: [{kind: deny, every: 4s, duration: 4s}]\n"  # openings back to back


def done(ledger: Path, name: str) -> list[tuple[int, int, str, int | None, str | None]]:
    return [r for r in rows(ledger, name) if r[2] not in ("running", "interrupted")]


def test_with_an_allow_window_only_slots_inside_it_run_and_the_others_are_skipped(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    # Allowed for the first 3 s of every 6 s: slots at seconds 0-2 run, 3-5 are skipped.
    schedule(sched, "allowed", "1s", "windows: [{kind: allow, every: 6s, duration: 3s}]\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len([r for r in done(d.ledger, "allowed") if r[2] == "skipped"]) >= 4
             and len([r for r in done(d.ledger, "allowed") if r[2] == "succeeded"]) >= 4, timeout=30,
             what="runs inside the allow window and skips outside it")
    assert d.stop() == 0
    for slot, _, status, _, error in done(d.ledger, "allowed"):
        inside = (slot // SECOND) % 6 < 3
        assert status == ("succeeded" if inside else "skipped"), (slot, status, error)
        if not inside:
            assert error is not None
            assert error.startswith("window: outside every allow window (window 1 (allow every 6s for 3s))")


def test_a_schedule_with_an_only_calendar_skips_every_slot_on_another_date(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    (sched / "calendars").mkdir(parents=True)
    (sched / "calendars" / "long-ago.yaml").write_text("dates: [2000-01-01]\n")
    schedule(sched, "rare", "1s", "calendar: {only: [long-ago]}\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len(done(d.ledger, "rare")) >= 3, what="three recorded slots")
    assert d.stop() == 0
    assert {(r[2], r[4]) for r in done(d.ledger, "rare")} == {("skipped", "not in calendar long-ago")}


@pytest.mark.parametrize(("manual", "status"), [("true", "succeeded"), ("false", "skipped")])
def test_manual_decides_whether_an_api_trigger_runs_outside_the_windows(
        manual: str, status: str, tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    # Its own slots are far away (1 January); the window denies every instant.
    sched.mkdir()
    (sched / "gated.yaml").write_text(
        "name: gated\nschedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n"
        f"{ALWAYS_DENIED}policy: {{manual: {manual}}}\n")
    token = tmp_path / "token"
    token.write_text(TOKEN)
    d = Daemon(sched, tmp_path, "--token-file", str(token))
    started.append(d)
    address = d.wait_event("http.listening")["address"]
    d.wait_event("revision.applied", add=1)
    code, _ = post(f"http://{address}/api/v1/schedules/gated/trigger", Authorization=f"Bearer {TOKEN}")
    assert code == 202
    wait_for(lambda: len(done(d.ledger, "gated")) == 1, what="the trigger's row")
    assert d.stop() == 0
    ((_, _, got, _, error),) = done(d.ledger, "gated")
    assert got == status, error
    if status == "skipped":
        assert error is not None
        assert error.startswith("window: inside window 1 (deny every 4s for 4s)")


def test_a_backfill_beside_the_daemon_records_a_calendars_skips_as_the_daemon_does_and_never_twice(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    (sched / "calendars").mkdir(parents=True)
    (sched / "calendars" / "every-day.yaml").write_text("weekdays: [mon, tue, wed, thu, fri, sat, sun]\n")
    schedule(sched, "closed", "1s", "calendar: {exclude: [every-day]}\n")
    begin = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)  # slots before the daemon
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len(done(d.ledger, "closed")) >= 2, what="the daemon's calendar skips")
    end = datetime.now(UTC).replace(microsecond=0)
    args = ("backfill", "closed", "--from", begin.isoformat(), "--to", end.isoformat(), "--dir", str(sched),
            "--ledger", str(d.ledger), "--format", "json")
    dry = json.loads(reconciler(*args, "--dry-run").stdout)["slots"]
    assert {p["plan"] for p in dry} == {"ran", "skipped"}
    assert all(p["detail"].startswith("calendar every-day (") for p in dry if p["plan"] == "skipped")
    real = reconciler(*args)
    assert real.returncode == 0, real.stderr
    assert {p["plan"] for p in json.loads(real.stdout)["slots"]} <= {"ran", "skipped", "taken"}
    assert d.stop() == 0
    found = rows(d.ledger, "closed")
    slots = [r[0] for r in found]
    assert len(slots) == len(set(slots))  # never a slot twice
    assert {r[2] for r in found} == {"skipped"}  # nothing ran
    assert {"schedule", "backfill"} <= {str(r[3]) for r in found}  # the daemon's rows and the backfill's
