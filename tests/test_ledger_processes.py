"""The ledger keeps where a run's processes live, so that a restart can stop what a crash left."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.policy import Cause
from reconciler.ledger.sqlite import MIGRATIONS, SqliteLedger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_where_a_run_lives_is_kept_until_asked_for(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    try:
        run_id = ledger.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0, owner="h:1")
        assert run_id is not None
        assert ledger.processes(run_id) is None
        ledger.set_processes(run_id, '{"pgid": 42}')
        assert ledger.processes(run_id) == '{"pgid": 42}'
        assert ledger.processes(run_id + 1) is None
    finally:
        ledger.close()


def test_a_ledger_from_before_gains_the_column_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:2]:  # the schema as shipped before this column
            db.executescript(migration)
        db.execute("PRAGMA user_version = 2")
        db.execute("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, owner) "
                   "VALUES ('a', 0, 1, 'schedule', 'running', 'r', 'h:1')")
    ledger = SqliteLedger(path)
    try:
        assert ledger.schema_version == len(MIGRATIONS)
        ((record, owner),) = ledger.open_runs()
        assert (record.schedule, owner, ledger.processes(record.id)) == ("a", "h:1", None)
        ledger.set_processes(record.id, "{}")
        assert ledger.processes(record.id) == "{}"
    finally:
        ledger.close()
