"""Exactly once under kill -9 and two processes: real daemons on one ledger, checked against the ledger
and against what the jobs themselves wrote."""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.harness import SHORT_LEASES, Daemon, lines, wait_for


def query(ledger: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
        return db.execute(sql, args).fetchall()


def test_every_retry_pending_at_a_kill_runs_after_the_restart(tmp_path: Path, daemons: list[Daemon]) -> None:
    # The reproduction: slots every 2 s fail, each is retried 5 s later, so at any moment
    # two or three slots wait for their retry; only the newest row's was resumed.
    sched = tmp_path / "schedules"
    sched.mkdir()
    attempts = tmp_path / "attempts"
    (sched / "flaky.yaml").write_text(
        "name: flaky\nschedule: {every: 2s}\npolicy: {retries: {limit: 1, backoff: 5s}}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT $RECONCILER_ATTEMPT >> {attempts}; exit 1']}}\n")
    first = Daemon(sched, tmp_path)
    daemons.append(first)
    first.wait_event("reconciler.started")
    time.sleep(7.5)
    first.stop(signal.SIGKILL)
    ledger = tmp_path / "ledger.db"
    pending = {slot for slot, in query(ledger, "SELECT slot FROM runs r WHERE attempt = 1 AND status = 'failed' "
                                               "AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.slot = r.slot "
                                               "AND n.attempt = 2)")}
    assert len(pending) >= 2, "the reproduction needs several retries pending at once"
    second = Daemon(sched, tmp_path)
    daemons.append(second)

    def retried() -> bool:
        done = {slot for slot, in query(ledger, "SELECT slot FROM runs WHERE attempt = 2 AND status != 'running'")}
        return pending <= done

    wait_for(retried, timeout=20, what="every pending retry to run after the restart")
    assert second.stop() == 0
    slots = {slot: status for slot, status in query(ledger, "SELECT slot, status FROM runs WHERE attempt = 2")}
    assert all(slots[s] == "failed" for s in pending)  # they ran (and failed again), not dropped
    written = lines(attempts)
    assert len(written) == len(set(written)), "an attempt ran twice"
    assert len(second.events("run.retry_resumed")) >= len(pending)


def busy(tmp_path: Path) -> tuple[Path, Path]:
    """A forbid schedule firing every second whose runs take 1.5 s, writing when each starts and ends."""
    sched = tmp_path / "schedules"
    sched.mkdir()
    marks = tmp_path / "marks"
    (sched / "busy.yaml").write_text(
        "name: busy\nschedule: {every: 1s}\npolicy: {concurrency: forbid}\n"
        f"run: {{command: [/bin/sh, -c, 'echo start $RECONCILER_SLOT >> {marks}; sleep 1.5; "
        f"echo end $RECONCILER_SLOT >> {marks}']}}\n")
    return sched, marks


def test_two_reconcilers_on_one_ledger_never_overlap_runs_of_a_forbid_schedule(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched, marks = busy(tmp_path)
    first = Daemon(sched, tmp_path)
    second = Daemon(sched, tmp_path)
    daemons.extend([first, second])
    first.wait_event("reconciler.started")
    second.wait_event("reconciler.started")
    time.sleep(10)
    assert first.stop() == 0
    assert second.stop() == 0
    ran = query(tmp_path / "ledger.db", "SELECT started_at, finished_at, status FROM runs "
                                        "WHERE schedule = 'busy' AND started_at IS NOT NULL ORDER BY started_at")
    assert len(ran) >= 3
    assert {status for *_, status in ran} <= {"succeeded", "interrupted"}
    for (_, end, _), (start, _, _) in itertools.pairwise(ran):
        assert isinstance(end, int)
        assert isinstance(start, int)
        assert start >= end, "two runs of a forbid schedule overlapped"
    skipped = query(tmp_path / "ledger.db", "SELECT error FROM runs WHERE schedule = 'busy' AND status = 'skipped'")
    assert skipped
    assert {error for error, in skipped} == {"the previous run is still running (concurrency: forbid)"}
    kinds = [line.split()[0] for line in lines(marks)]  # what the jobs saw: never two started at once
    assert kinds[:2] == ["start", "end"]
    assert all(a != b for a, b in itertools.pairwise(kinds)), kinds


def test_a_forbid_schedule_carries_on_in_one_reconciler_when_the_other_is_killed_during_its_run(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched, _ = busy(tmp_path)
    first = Daemon(sched, tmp_path, *SHORT_LEASES)
    second = Daemon(sched, tmp_path, *SHORT_LEASES)
    daemons.extend([first, second])
    first.wait_event("reconciler.started")
    second.wait_event("reconciler.started")
    ledger = tmp_path / "ledger.db"

    def running() -> list[tuple[object, ...]]:
        return query(ledger, "SELECT runs.id, replicas.pid FROM runs JOIN replicas ON replicas.id = runs.owner "
                             "WHERE schedule = 'busy' AND status = 'running'")

    (run_id, pid), = wait_for(running, what="a run")
    killed, survivor = (first, second) if pid == first.proc.pid else (second, first)
    assert pid == killed.proc.pid
    killed.stop(signal.SIGKILL)
    survivor.wait_event("run.abandoned", run_id=run_id)
    after = len(survivor.events("run.start"))
    wait_for(lambda: len(survivor.events("run.start")) >= after + 2, timeout=10,
             what="the survivor to run the schedule on its own")
    assert survivor.stop() == 0
    status, = query(ledger, "SELECT status FROM runs WHERE id = ?", run_id)[0]
    assert status == "abandoned"



def test_a_manual_trigger_in_another_process_is_skipped_while_the_daemon_runs_a_forbid_schedule(
        tmp_path: Path, daemons: list[Daemon], reconciler: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "long.yaml").write_text("name: long\nschedule: {every: 2s}\npolicy: {concurrency: forbid}\n"
                                     "run: {command: [/bin/sleep, '30']}\n")
    d = Daemon(sched, tmp_path, "--grace", "1s")
    daemons.append(d)
    d.wait_event("run.start", schedule="long")
    r = reconciler("trigger", "long", "--dir", str(sched), "--ledger", str(tmp_path / "ledger.db"))
    assert r.returncode == 1
    assert r.stdout.startswith("run ")
    assert r.stdout.rstrip().endswith(": skipped (the previous run is still running (concurrency: forbid))")
    assert d.stop() == 0
