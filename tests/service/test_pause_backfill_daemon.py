"""Pause, resume and backfill through the real CLI beside a real daemon."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.harness import Daemon, job, lines, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]


def rows(ledger: Path, name: str) -> list[tuple[int, int, str, str, str | None]]:
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return db.execute("SELECT id, slot, trigger, status, error FROM runs WHERE schedule = ? ORDER BY id",
                              (name,)).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def applied(ledger: Path) -> bool:
    """The daemon recorded its first revision (what `pause` chooses schedules from)."""
    if not ledger.exists():
        return False
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return bool(db.execute("SELECT count(*) FROM revisions").fetchone()[0])
    except sqlite3.OperationalError:
        return False


def test_a_paused_schedule_records_skipped_slots_with_the_reason_then_runs_again_once_resumed(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    marker = tmp_path / "out"
    (sched / "tick.yaml").write_text(job("tick", marker, every="1s"))
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: lines(marker), what="a first run")
    paused = reconciler("pause", "tick", "--reason", "db migration", "--ledger", str(d.ledger))
    assert paused.returncode == 0, paused.stderr
    assert "tick: paused by" in paused.stdout
    assert "db migration" in paused.stdout

    def skipped() -> list[tuple[int, int, str, str, str | None]]:
        return [r for r in rows(d.ledger, "tick") if r[3] == "skipped"]

    wait_for(lambda: len(skipped()) >= 2, timeout=10, what="slots skipped while paused")
    assert all("db migration" in (r[4] or "") for r in skipped())
    runs_while_paused = len(lines(marker))
    listed = reconciler("pause", "--list", "--ledger", str(d.ledger))
    assert "tick: paused by" in listed.stdout
    resumed = reconciler("resume", "tick", "--ledger", str(d.ledger))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "tick: resumed\n"
    wait_for(lambda: len(lines(marker)) >= runs_while_paused + 2, timeout=10, what="runs after resume")
    last_skip = max(r[0] for r in skipped())
    assert any(r[0] > last_skip and r[3] == "succeeded" for r in rows(d.ledger, "tick"))


def test_a_pause_for_a_few_seconds_resumes_by_itself(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    marker = tmp_path / "out"
    (sched / "tick.yaml").write_text(job("tick", marker, every="1s"))
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: applied(d.ledger), what="the first revision")
    assert reconciler("pause", "tick", "--for", "3s", "--ledger", str(d.ledger)).returncode == 0
    wait_for(lambda: any(r[3] == "skipped" for r in rows(d.ledger, "tick")), timeout=10, what="a paused slot")
    last_skip = max(r[0] for r in rows(d.ledger, "tick") if r[3] == "skipped")
    wait_for(lambda: any(r[0] > last_skip and r[3] == "succeeded" for r in rows(d.ledger, "tick")), timeout=10,
             what="a run once the pause expired")


def test_pausing_by_label_and_errors_are_told_plainly(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    for name, team in (("a", "x"), ("b", "y"), ("c", "x")):
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nlabels: {{team: {team}}}\nschedule: {{every: 1h}}\nrun: {{command: [/bin/true]}}\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: applied(d.ledger), what="the first revision")
    out = reconciler("pause", "--selector", "team=x", "--for", "1h", "--format", "json", "--ledger", str(d.ledger))
    assert out.returncode == 0, out.stderr
    assert [p["schedule"] for p in json.loads(out.stdout)] == ["a", "c"]
    typo = reconciler("pause", "cc", "--ledger", str(d.ledger))
    assert typo.returncode == 1
    assert "did you mean 'c'" in typo.stderr
    both = reconciler("pause", "a", "--until", "2099-01-01T00:00:00Z", "--for", "1h", "--ledger", str(d.ledger))
    assert both.returncode == 64


def test_backfill_runs_only_the_past_slots_without_a_run_beside_a_running_daemon(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    marker = tmp_path / "out"
    (sched / "tick.yaml").write_text(job("tick", marker, every="1s"))
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: len([r for r in rows(d.ledger, "tick") if r[3] == "succeeded"]) >= 2, what="two runs")
    ran = {r[1] for r in rows(d.ledger, "tick")}
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(seconds=30), now
    args = ("tick", "--from", start.isoformat(), "--to", end.isoformat(), "--dir", str(sched),
            "--ledger", str(d.ledger))
    dry = reconciler("backfill", *args, "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["slots"]
    assert len(planned) == 30
    assert {p["plan"] for p in planned} == {"run", "ran"}
    real = reconciler("backfill", *args, "--parallel", "4", "--format", "json")
    assert real.returncode == 0, real.stderr
    done = json.loads(real.stdout)["slots"]
    backfilled = [p for p in done if p["status"] == "succeeded"]
    assert backfilled
    all_rows = rows(d.ledger, "tick")
    slots = [r[1] for r in all_rows if r[2] in ("schedule", "backfill", "catchup")]
    assert len(slots) == len(set(slots))  # never a slot twice
    assert all(r[1] not in ran for r in all_rows if r[2] == "backfill")  # never one that ran
    again = reconciler("backfill", *args, "--dry-run", "--format", "json")
    assert {p["plan"] for p in json.loads(again.stdout)["slots"]} == {"ran"}


def test_backfill_refuses_the_future_and_more_slots_than_max(
        tmp_path: Path, started: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "tick.yaml").write_text(job("tick", tmp_path / "out", every="1s"))
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: applied(d.ledger), what="the first revision")
    now = datetime.now(UTC)
    common = ("--dir", str(sched), "--ledger", str(d.ledger))
    future = reconciler("backfill", "tick", "--from", now.isoformat(),
                        "--to", (now + timedelta(hours=1)).isoformat(), *common)
    assert future.returncode == 64
    assert "in the future" in future.stderr
    many = reconciler("backfill", "tick", "--from", (now - timedelta(hours=1)).isoformat(),
                      "--to", (now - timedelta(minutes=1)).isoformat(), *common)
    assert many.returncode == 1
    assert "more than 1000 slots" in many.stderr
