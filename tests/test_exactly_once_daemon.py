"""Exactly once under kill -9 and two processes: real daemons on one ledger, checked against the ledger
and against what the jobs themselves wrote."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Daemon, lines, wait_for


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def query(ledger: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
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
