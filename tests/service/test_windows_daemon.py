"""Windows and calendars with a real daemon: seconds-scale `every:` schedules and windows."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

from tests.harness import Daemon, wait_for

# Denied for the first 3 s of every 6 s (aligned to the epoch): slots at second 0, 1, 2 of each
# 6 s are inside the deny window, slots at 3, 4, 5 are not.
DENY = "windows: [{kind: deny, every: 6s, duration: 3s}]\n"
SECOND = 1_000_000


def rows(ledger: Path, name: str) -> list[tuple[int, int, str, int | None, str | None]]:
    """(slot, started_at, status, trigger, error) in µs; read-only, so the daemon creates the file."""
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return db.execute("SELECT slot, started_at, status, trigger, error FROM runs WHERE schedule = ? "
                              "ORDER BY slot", (name,)).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def schedule(directory: Path, name: str, every: str, extra: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nschedule: {{every: {every}}}\nrun: {{command: [/bin/true]}}\n{extra}")


def test_slots_inside_a_deny_window_are_skipped_with_reason_window_and_the_others_run(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    schedule(sched, "gated", "1s", DENY)
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)

    def enough() -> bool:
        found = rows(d.ledger, "gated")
        skipped = [r for r in found if r[2] == "skipped"]
        ran = [r for r in found if r[2] == "succeeded"]
        # Runs again after a skip: a run whose slot follows a skipped one.
        return len(skipped) >= 4 and any(r[0] > skipped[0][0] for r in ran)

    wait_for(enough, timeout=30, what="skipped slots, then runs again")
    assert d.stop() == 0
    for slot, _, status, _, error in rows(d.ledger, "gated"):
        denied = (slot // SECOND) % 6 < 3
        if status in ("running", "interrupted"):
            continue
        assert status == ("skipped" if denied else "succeeded"), (slot, status, error)
        if denied:
            assert error is not None
            assert error.startswith("window: inside window 1 (deny every 6s for 3s)")


def test_a_deferred_slot_runs_when_the_deny_window_closes_under_its_own_identity(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    # Every slot (second 0 of each 6 s) falls in the window: each waits 3 s, within its deadline.
    schedule(sched, "deferred", "6s", DENY + "policy: {outside: defer, starting_deadline: 5s}\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len([r for r in rows(d.ledger, "deferred") if r[2] == "succeeded"]) >= 2, timeout=30,
             what="two deferred runs")
    d.wait_event("run.deferred", schedule="deferred")
    assert d.stop() == 0
    done = [r for r in rows(d.ledger, "deferred") if r[2] not in ("running", "interrupted")]
    assert {r[2] for r in done} == {"succeeded"}
    for slot, started_at, _, _, _ in done:
        assert slot % (6 * SECOND) == 0  # the slot's identity is kept
        assert started_at - slot >= 3 * SECOND  # it started when the window closed, not before


def test_a_calendar_edit_reaches_the_running_daemon_without_a_change_to_the_schedule(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    (sched / "calendars").mkdir(parents=True)
    (sched / "calendars" / "blackout.yaml").write_text("dates: [2000-01-01]\n")
    schedule(sched, "daily", "1s", "calendar: {exclude: [blackout]}\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: any(r[2] == "succeeded" for r in rows(d.ledger, "daily")), what="a run")
    # Every weekday is excluded from now on: the same schedule's slots are skipped.
    (sched / "calendars" / "blackout.yaml").write_text("weekdays: [mon, tue, wed, thu, fri, sat, sun]\n")
    wait_for(lambda: len([r for r in rows(d.ledger, "daily") if r[2] == "skipped"]) >= 2, timeout=20,
             what="skipped slots after the calendar edit")
    skipped = [r for r in rows(d.ledger, "daily") if r[2] == "skipped"]
    assert skipped[0][4] is not None
    assert skipped[0][4].startswith("calendar blackout (")
    # The API's next fire times say so too.
    address = d.wait_event("http.listening")["address"]
    with urllib.request.urlopen(f"http://{address}/api/v1/schedules/daily", timeout=10) as response:
        body = json.load(response)
    assert body["upcoming"]
    assert all(u["note"].startswith("skipped: calendar blackout (") for u in body["upcoming"])
    assert body["next_note"].startswith("skipped: calendar blackout (")
    assert d.stop() == 0
