"""Runs through the real daemon: crashes, shutdowns, downtime, and the history/trigger commands."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.engine.leases import ABANDONED
from reconciler.engine.runner import SHUTDOWN_KILL_AFTER
from reconciler.kinds.procs import is_live
from tests.harness import SHORT_LEASES, Daemon, lines, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]


def rows(ledger: Path, name: str) -> list[tuple[int, str, int, str, str]]:
    """Read-only, so a test never creates the ledger file before the daemon does."""
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return db.execute("SELECT id, slot, attempt, trigger, status FROM runs WHERE schedule = ? ORDER BY id",
                              (name,)).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def long_job(tmp_path: Path, name: str = "long", seconds: int = 30, every: str = "1h") -> Path:
    sched = tmp_path / "schedules"
    sched.mkdir(exist_ok=True)
    (sched / f"{name}.yaml").write_text(
        f"name: {name}\nschedule: {{every: {every}}}\n"
        f"run: {{command: [/bin/sh, -c, 'echo started >> {tmp_path}/{name}.out; sleep {seconds}']}}\n")
    return sched


def test_sigkill_during_a_run_then_restart_records_abandoned_and_does_not_rerun_the_slot(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = long_job(tmp_path, every="2s")
    d = Daemon(sched, tmp_path, *SHORT_LEASES)
    daemons.append(d)
    wait_for(lambda: lines(tmp_path / "long.out"), what="the job to start")
    d.stop(signal.SIGKILL)
    (run_id, slot, _, _, status), = rows(d.ledger, "long")
    assert status == "running"
    d2 = Daemon(sched, tmp_path, *SHORT_LEASES)
    daemons.append(d2)
    d2.wait_event("run.abandoned", run_id=run_id)
    time.sleep(1)
    after = rows(d2.ledger, "long")
    assert after[0][4] == "abandoned"
    assert [r for r in after if r[1] == slot] == [after[0]], "the abandoned slot ran again"
    assert d2.stop(signal.SIGKILL) is not None


def test_sigterm_during_a_run_records_interrupted_within_the_grace_period(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = long_job(tmp_path, every="2s")
    d = Daemon(sched, tmp_path, "--grace", "1s")
    daemons.append(d)
    wait_for(lambda: lines(tmp_path / "long.out"), what="the job to start")
    start = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - start < 10  # grace 1s + SIGTERM/SIGKILL of the group
    statuses = [r[4] for r in rows(d.ledger, "long")]
    assert statuses[0] == "interrupted"
    assert "running" not in statuses


def test_a_job_that_finishes_within_the_grace_period_is_recorded_as_it_ended(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = long_job(tmp_path, seconds=1, every="3s")
    d = Daemon(sched, tmp_path, "--grace", "10s")
    daemons.append(d)
    wait_for(lambda: lines(tmp_path / "long.out"), what="the job to start")
    assert d.stop(signal.SIGTERM) == 0
    assert rows(d.ledger, "long")[0][4] == "succeeded"


@pytest.mark.parametrize(("policy", "expected"), [("none", ["missed"]), ("latest", ["missed", "succeeded"])])
def test_catchup_after_downtime_follows_the_policy(tmp_path: Path, daemons: list[Daemon], policy: str,
                                                   expected: list[str]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(f"name: tick\nschedule: {{every: 1s}}\nrun: {{command: [/bin/true]}}\n"
                                  f"policy: {{catchup: {policy}}}\n")
    d = Daemon(sched, tmp_path)
    daemons.append(d)
    wait_for(lambda: len(rows(d.ledger, "tick")) >= 2, what="two runs")
    d.stop()
    before = rows(d.ledger, "tick")
    time.sleep(3.5)  # downtime: three or four slots pass
    d2 = Daemon(sched, tmp_path)
    daemons.append(d2)
    d2.wait_event("reconciler.started")
    wait_for(lambda: len([r for r in rows(d2.ledger, "tick") if r[3] == "catchup"]) == len(expected),
             what="catch-up records")
    catchups = [r for r in rows(d2.ledger, "tick") if r[3] == "catchup"]
    wait_for(lambda: all(r[4] != "running" for r in rows(d2.ledger, "tick") if r[3] == "catchup"), what="finish")
    catchups = [r for r in rows(d2.ledger, "tick") if r[3] == "catchup"]
    assert [r[4] for r in catchups] == expected
    assert all(r[1] > before[-1][1] for r in catchups)
    d2.stop()
    slots = [r[1] for r in rows(d2.ledger, "tick") if r[2] == 1]
    assert len(slots) == len(set(slots)), "a slot ran twice"


def test_history_lists_runs_newest_first_and_shows_one_with_its_output(
        tmp_path: Path, daemons: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: talker\nschedule: {every: 1s}\n"
                                  "run: {command: [/bin/echo, 'hello <script>alert(1)</script>']}\n")
    d = Daemon(sched, tmp_path)
    daemons.append(d)
    wait_for(lambda: len([r for r in rows(d.ledger, "talker") if r[4] == "succeeded"]) >= 2, what="two runs")
    d.stop()
    r = reconciler("history", "talker", "--ledger", str(d.ledger), "--format", "json", "--limit", "2")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data) == 2
    assert data[0]["id"] > data[1]["id"]
    assert {"id", "schedule", "slot", "attempt", "trigger", "status", "started_at", "finished_at", "exit_code",
            "revision"} <= set(data[0])
    one = reconciler("history", "--run", str(data[0]["id"]), "--ledger", str(d.ledger))
    assert one.returncode == 0
    assert "hello <script>alert(1)</script>" in one.stdout
    text = reconciler("history", "--ledger", str(d.ledger), "--status", "succeeded", "--since", "1h")
    assert text.stdout.splitlines()[0].split()[:3] == ["ID", "SCHEDULE", "SLOT"]
    assert "talker" in text.stdout
    assert reconciler("history", "--ledger", str(d.ledger), "--status", "bogus").returncode == 64


def test_trigger_runs_a_schedule_now_as_a_manual_run(tmp_path: Path, reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: now\nschedule: {cron: '0 0 1 1 *'}\nrun: {command: [/bin/echo, manual-ok]}\n")
    ledger = tmp_path / "l.db"
    r = reconciler("trigger", "now", "--dir", str(sched), "--ledger", str(ledger))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["run 1: succeeded", "manual-ok"]
    assert [(t, s) for _, _, _, t, s in rows(ledger, "now")] == [("manual", "succeeded")]
    assert reconciler("trigger", "missing", "--dir", str(sched), "--ledger", str(ledger)).returncode == 1


def test_two_reconcilers_on_one_ledger_run_every_slot_exactly_once_and_one_carries_on_alone(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "slots.out"
    (sched / "tick.yaml").write_text(
        "name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT >> {out}']}}\n")
    first = Daemon(sched, tmp_path)
    daemons.append(first)
    first.wait_event("reconciler.started")
    second = Daemon(sched, tmp_path)  # the same ledger: both fire every slot, claims decide
    daemons.append(second)
    second.wait_event("reconciler.started")
    wait_for(lambda: len(lines(out)) >= 6, timeout=20, what="six slots")
    assert first.stop() == 0
    together = len(lines(out))
    wait_for(lambda: len(lines(out)) >= together + 3, timeout=20, what="three slots run by the second alone")
    assert second.stop() == 0
    slots = lines(out)
    assert len(slots) == len(set(slots))  # no slot ran twice
    recorded = rows(tmp_path / "ledger.db", "tick")
    assert len({slot for _, slot, *_ in recorded}) == len(recorded) == len(slots)
    assert {status for *_, status in recorded} == {"succeeded"}
    assert len(first.events("run.start")) + len(second.events("run.start")) == len(slots)
    assert len(second.events("run.start")) >= 3


def test_a_retry_pending_when_the_reconciler_stops_runs_after_the_restart(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    from datetime import UTC, datetime, timedelta

    sched = tmp_path / "schedules"
    sched.mkdir()
    at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    (sched / "flaky.yaml").write_text(
        f"name: flaky\nschedule: {{at: '{at}'}}\npolicy: {{retries: {{limit: 1, backoff: 4s}}}}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_ATTEMPT >> {tmp_path}/attempts; exit 3']}}\n")
    first = Daemon(sched, tmp_path)
    daemons.append(first)
    first.wait_event("run.end", timeout=20, schedule="flaky", status="failed")
    assert first.stop() == 0  # attempt 2 was due 4 s later: pending in this process only
    assert lines(tmp_path / "attempts") == ["1"]
    second = Daemon(sched, tmp_path)
    daemons.append(second)
    resumed = second.wait_event("run.retry_resumed", schedule="flaky", attempt=2)
    assert resumed["slot"] == at
    second.wait_event("run.end", timeout=20, schedule="flaky", attempt=2)
    assert lines(tmp_path / "attempts") == ["1", "2"]
    assert [(a, t, s) for _, _, a, t, s in rows(tmp_path / "ledger.db", "flaky")] == [
        (1, "schedule", "failed"), (2, "retry", "failed")]
    assert second.stop() == 0


# ---- nothing a run started outlives it ------------------------------------------------------------------


def pids(path: Path) -> list[int]:
    return [int(x) for x in lines(path)]


def dead(pid: int) -> bool:
    """Gone, or a zombie (reaped here if it became our child: the test process may be a subreaper)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not is_live(pid)


def kill_all(*groups: list[int]) -> None:
    for pid in (p for g in groups for p in g):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def run_row(ledger: Path, run_id: int) -> tuple[str, int | None, str | None]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        row = db.execute("SELECT status, exit_code, error FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row  # type: ignore[no-any-return]


@pytest.mark.parametrize("cgroups", ["on", "off"])
def test_a_job_left_running_by_a_killed_daemon_is_stopped_at_the_restart_and_the_run_says_so(
        tmp_path: Path, daemons: list[Daemon], cgroups: str) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "long.yaml").write_text(
        "name: long\nschedule: {every: 2s}\n"
        f"run: {{command: [/bin/sh, -c, 'sleep 30 & echo $! >> {tmp_path}/children; "
        f"echo $$ >> {tmp_path}/mains; wait']}}\n")
    env = {"RECONCILER_CGROUP": cgroups}
    d = Daemon(sched, tmp_path, *SHORT_LEASES, env=env)
    daemons.append(d)
    try:
        wait_for(lambda: pids(tmp_path / "children") and pids(tmp_path / "mains"), what="the job to start")
        d.stop(signal.SIGKILL)
        (run_id, *_), = rows(d.ledger, "long")
        (main,), (child,) = pids(tmp_path / "mains"), pids(tmp_path / "children")
        wait_for(lambda: dead(main), timeout=5, what="the job's own process to die with the daemon")
        assert not dead(child), "the child should have outlived the daemon: nothing left to test"
        d2 = Daemon(sched, tmp_path, "--grace", "0s", *SHORT_LEASES, env=env)
        daemons.append(d2)
        abandoned = d2.wait_event("run.abandoned", run_id=run_id)
        assert dead(child), "the orphan survived the restart"
        assert abandoned["error"] == (f"{ABANDONED}; 1 process it left was still running and was stopped (SIGTERM)")
        assert run_row(d2.ledger, run_id) == ("abandoned", None, abandoned["error"])
        d2.wait_event("run.start")
        events = [e["event"] for e in d2.events()]
        assert events.index("run.abandoned") < events.index("run.start"), "a new run overlapped the orphan"
        assert d2.stop() == 0
    finally:
        kill_all(pids(tmp_path / "mains"), pids(tmp_path / "children"))


def test_a_job_that_ignores_sigterm_is_killed_at_the_end_of_the_grace(tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "stubborn.yaml").write_text(
        "name: stubborn\nschedule: {every: 2s}\n"
        f"run: {{command: [/bin/sh, -c, \"trap '' TERM; echo $$ >> {tmp_path}/mains; sleep 30\"]}}\n")
    d = Daemon(sched, tmp_path, "--grace", "1s")
    daemons.append(d)
    try:
        wait_for(lambda: pids(tmp_path / "mains"), what="the job to start")
        start = time.monotonic()
        assert d.stop(signal.SIGTERM) == 0
        took = time.monotonic() - start
        assert took < 1 + SHUTDOWN_KILL_AFTER + 3, f"the daemon took {took:.1f}s to stop"
        run_id, *_ = rows(d.ledger, "stubborn")[0]
        assert run_row(d.ledger, run_id) == (
            "interrupted", -9, "the reconciler stopped and the grace period (1s) ended: killed by signal 9 "
                               f"(SIGKILL {SHUTDOWN_KILL_AFTER:g}s after SIGTERM)")
        assert dead(pids(tmp_path / "mains")[0])
    finally:
        kill_all(pids(tmp_path / "mains"))


def test_a_job_whose_setsid_child_holds_its_output_ends_promptly_and_leaves_no_process(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "spawner.yaml").write_text(
        "name: spawner\nschedule: {every: 2s}\n"
        f"run: {{command: [/bin/sh, -c, \"setsid sh -c 'echo $$ >> {tmp_path}/escapees; exec sleep 30' & "
        "sleep 0.2; echo done\"]}\n")
    d = Daemon(sched, tmp_path)
    daemons.append(d)
    try:
        end = d.wait_event("run.end", schedule="spawner")
        assert end["status"] == "succeeded"
        assert end["duration_ms"] < 1500, "a leftover holding the output held the run open"
        escapee = pids(tmp_path / "escapees")[0]
        wait_for(lambda: dead(escapee), timeout=3, what="the setsid child to be stopped with its run")
        assert d.stop() == 0
    finally:
        kill_all(pids(tmp_path / "escapees"))
