"""The SQLite ledger on a volume that fills up: a bounded WAL, "disk full" reported once, recovery.

A full disk is simulated with `PRAGMA max_page_count` on the writer's connection, which makes
SQLite fail exactly as on a full volume ("database or disk is full", SQLITE_FULL).
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger.base import LedgerFull, Outcome
from reconciler.ledger.sqlite import WAL_LIMIT, SqliteLedger
from tests.harness import lines, wait_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG = "x" * 64 * 1024  # a run's kept output at its largest


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def run(led: SqliteLedger, i: int, output: str = BIG) -> int:
    run_id = led.claim("a", T0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0)
    assert run_id is not None
    led.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0, output=output))
    return run_id


def fill(led: SqliteLedger) -> None:
    """No page may be added from now on, and the free room left in the pages is taken up too."""
    with led._lock:
        pages = led._db.execute("PRAGMA page_count").fetchone()[0]
        led._db.execute(f"PRAGMA max_page_count = {pages}")
        n = 0
        for size in (4000, 400, 40, 4, 0):
            for _ in range(1000):
                n += 1
                try:
                    led._db.execute("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, error) "
                                    "VALUES ('padding', ?, 1, 'schedule', 'skipped', '', ?)", (n, "p" * size))
                except sqlite3.OperationalError:
                    break


def make_room(led: SqliteLedger) -> None:
    with led._lock:
        led._db.execute("PRAGMA max_page_count = 1073741823")


def test_the_wal_shrinks_back_under_its_bound_after_a_burst_a_reader_held_open(ledger: SqliteLedger) -> None:
    wal = Path(f"{ledger.path}-wal")
    reader = sqlite3.connect(ledger.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runs").fetchone()  # pins the WAL: no checkpoint can finish
    for i in range(200):  # ~13 MiB of output
        run(ledger, i)
    assert wal.stat().st_size > 3 * WAL_LIMIT  # the burst really grew the WAL
    reader.execute("COMMIT")
    reader.close()
    for i in range(200, 203):  # space is back (the reader went away); a few ordinary writes
        run(ledger, i, output="ok")
    assert wal.stat().st_size <= WAL_LIMIT


def test_a_full_ledger_is_reported_once_and_its_recovery_once(ledger: SqliteLedger) -> None:
    states: list[str | None] = []
    ledger.on_write_state = states.append
    running = ledger.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0)
    assert running is not None
    fill(ledger)
    for i in range(1, 6):
        with pytest.raises(LedgerFull, match="database or disk is full"):
            ledger.record("a", T0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                          outcome=Outcome(RunStatus.SKIPPED, T0, output=BIG))
    assert len(states) == 1
    assert "the ledger cannot be written: database or disk is full" in (states[0] or "")
    make_room(ledger)
    after = run(ledger, 10, output="ok")
    assert states[1:] == [None]  # recovered, said once
    record = ledger.run(after)
    assert record is not None
    assert record.status == "succeeded"


def test_a_run_that_ends_while_the_disk_is_full_is_finished_once_space_returns(ledger: SqliteLedger) -> None:
    running = ledger.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0, exclusive=True)
    assert running is not None
    fill(ledger)
    ledger.finish(running, Outcome(RunStatus.FAILED, T0, exit_code=3, output=BIG))  # no exception: it is kept
    assert ledger.open_runs("a")[0][0].id == running  # still running on disk, holding the forbid schedule
    make_room(ledger)
    next_id = ledger.claim("a", T0 + timedelta(minutes=1), attempt=1, cause=Cause.SCHEDULE, revision="r",
                           started_at=T0, exclusive=True)
    assert next_id is not None  # the kept end was written first, which released the schedule
    record = ledger.run(running)
    assert record is not None
    assert (record.status, record.exit_code) == ("failed", 3)


def test_the_daemon_logs_disk_full_once_runs_nothing_meanwhile_and_carries_on_after(tmp_path: Path) -> None:
    from reconciler.ledger import open_ledger
    from reconciler.service.daemon import Options, Reconciler
    from reconciler.service.log import make_log

    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(f"name: tick\nschedule: {{every: 1s}}\n"
                                  f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT >> {out}']}}\n")
    stream = io.StringIO()
    led = open_ledger(tmp_path / "ledger.db")
    assert isinstance(led, SqliteLedger)
    r = Reconciler(Options(directory=str(sched), listen=None), led, make_log("json", stream),
                   lambda: datetime.now(UTC))
    r.start()

    def events(kind: str) -> list[dict[str, object]]:
        return [e for e in map(json.loads, stream.getvalue().splitlines()) if e["event"] == kind]

    try:
        wait_for(lambda: lines(out), what="a first run")
        wait_for(lambda: not r.runner.running(), what="it to end")
        fill(led)
        wait_for(lambda: events("ledger.write_failed"), what="the disk-full report")
        ran = len(lines(out))
        stop = threading.Event()
        stop.wait(3.5)  # three or four slots pass on a full disk
        assert len(events("ledger.write_failed")) == 1
        assert events("run.error") == []
        assert len(lines(out)) <= ran + 1  # none claimed, so none ran (one may have been under way)
        assert r.live.status.ledger_error is not None
        assert "database or disk is full" in r.live.status.ledger_error
        make_room(led)
        wait_for(lambda: len(lines(out)) >= ran + 3, what="runs once there is space again")
        assert len(events("ledger.write_recovered")) == 1
        assert r.live.status.ledger_error is None
    finally:
        r.stop()
        led.close()
