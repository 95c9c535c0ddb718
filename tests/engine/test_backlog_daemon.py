"""A burst of slots larger than the runner's workers, through the real daemon: every slot gets a
row, whether it ran, waited past a full backlog, or was still waiting at SIGTERM."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.harness import Daemon, wait_for

BURST = 100  # more than the runner's 64 workers: some slots must wait


def burst(tmp_path: Path) -> tuple[Path, datetime]:
    """BURST schedules due once, together, a few seconds from now, each running 30 s."""
    sched = tmp_path / "schedules"
    sched.mkdir()
    at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    for i in range(BURST):
        (sched / f"b{i:03d}.yaml").write_text(
            f"name: b{i:03d}\nschedule: {{at: \"{at:%Y-%m-%dT%H:%M:%SZ}\"}}\nrun: {{command: [/bin/sleep, '30']}}\n")
    return sched, at


def final_rows(ledger: Path) -> dict[str, list[tuple[str, str | None]]]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        out: dict[str, list[tuple[str, str | None]]] = {}
        for name, status, error in db.execute("SELECT schedule, status, error FROM runs ORDER BY id"):
            out.setdefault(name, []).append((status, error))
    return out


def test_every_slot_of_a_burst_has_a_final_row_after_sigterm(tmp_path: Path, started: list[Daemon]) -> None:
    sched, _ = burst(tmp_path)
    d = Daemon(sched, tmp_path, "--grace", "1s")
    started.append(d)
    wait_for(lambda: len(d.events("run.start")) >= 64, timeout=30, what="the workers to be busy")
    base = f"http://{d.wait_event('http.listening')['address']}"
    with urllib.request.urlopen(f"{base}/api/v1/overview", timeout=10) as r:
        overview = json.load(r)
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert overview["waiting"] == BURST - 64  # the backlog is shown...
    assert f"reconciler_runs_waiting {float(BURST - 64)}" in metrics  # ...and measured
    assert d.stop() == 0
    rows = final_rows(d.ledger)
    assert sorted(rows) == [f"b{i:03d}" for i in range(BURST)]  # not one slot vanished
    assert all(len(r) == 1 for r in rows.values())
    statuses = {status for r in rows.values() for status, _ in r}
    assert "running" not in statuses
    waited = [error for r in rows.values() for status, error in r if status == "missed"]
    assert waited
    assert all(e and "stopped before it could start" in e for e in waited)


def test_slots_beyond_a_full_backlog_are_recorded_missed_for_overload_at_once(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched, _ = burst(tmp_path)
    d = Daemon(sched, tmp_path, "--grace", "1s", "--max-running", "64", env={"RECONCILER_MAX_WAITING": "5"})
    started.append(d)
    wait_for(lambda: len(d.events("run.missed")) >= BURST - 64 - 5, timeout=30, what="the overflow to be recorded")
    overflow = [e for e in d.events("run.missed") if e.get("reason") == "overload"]
    assert len(overflow) >= BURST - 64 - 5
    assert all(e["error"].startswith("overload: ") for e in overflow)
    assert d.stop() == 0
    rows = final_rows(d.ledger)
    assert sorted(rows) == [f"b{i:03d}" for i in range(BURST)]
    assert "running" not in {status for r in rows.values() for status, _ in r}
