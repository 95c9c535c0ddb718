"""The ledger keeps where a run's processes live, so that a restart can stop what a crash left."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from reconciler.ledger.sqlite import MIGRATIONS, SqliteLedger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
        assert (record.schedule, owner) == ("a", "h:1")
        ledger.set_processes(record.id, "{}")
        assert ledger._db.execute("SELECT processes FROM runs").fetchall() == [("{}",)]
    finally:
        ledger.close()
