"""The SQLite ledger: WAL, synchronous=FULL, BEGIN IMMEDIATE for every write, versioned schema.

One connection shared under a lock: SQLite serialises writers anyway, and one connection keeps
the claim (an INSERT under a UNIQUE constraint) and its visibility simple. Other processes (a
second reconciler, `reconciler history`) open their own connections; WAL lets them read while
we write, and `busy_timeout` makes concurrent writers wait instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.ledger.base import AppliedRevision, LedgerError, Outcome, RunRecord, from_micros, to_micros

DEFAULT_PATH = Path(".reconciler") / "ledger.db"

# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE specs (
        hash TEXT PRIMARY KEY,
        spec TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE revisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        revision TEXT NOT NULL,
        applied_at INTEGER NOT NULL,
        counts TEXT NOT NULL,
        snapshot BLOB NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        schedule TEXT NOT NULL,
        slot INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        status TEXT NOT NULL,
        revision TEXT NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        exit_code INTEGER,
        http_status INTEGER,
        error TEXT,
        output TEXT,
        output_dropped INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        UNIQUE (schedule, slot, attempt)
    );
    CREATE INDEX runs_by_schedule ON runs (schedule, id DESC);
    CREATE INDEX runs_by_status ON runs (status, id DESC);
    """,
    # v2: runs started per schedule, kept apart from `runs` because retention prunes those.
    """
    CREATE TABLE counters (
        schedule TEXT PRIMARY KEY,
        started INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # Where a run's processes live (JSON: host, boot, process group, cgroup), so that a restart can
    # stop what a killed reconciler left running.
    """
    ALTER TABLE runs ADD COLUMN processes TEXT;
    """,
)

_RUN_COLUMNS = ("id, schedule, slot, attempt, trigger, status, revision, started_at, finished_at, "
                "exit_code, http_status, error")


class SqliteLedger:
    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._rlock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"{self.path}: cannot open the ledger: {getattr(e, 'strerror', None) or e}") from e
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # The writer appends runs and updates single rows: a small page cache costs it nothing,
            # and keeps 10,000-spec revisions from leaving megabytes cached (reads have their own).
            self._db.execute("PRAGMA cache_size=-512")
            self._migrate()
            # Reads (the API, the dashboard) use their own connection: under WAL they never wait
            # for the runner's writes, and the writers never wait for a slow page.
            self._rdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as e:
            self._db.close()
            raise LedgerError(f"{self.path}: cannot open the ledger: {e}") from e
        except LedgerError:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock, self._rlock:
            self._db.close()
            self._rdb.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:  # atomic: a half-migrated ledger never exists
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise LedgerError(f"{self.path}: ledger schema v{version} is newer than this reconciler "
                                   f"(v{len(MIGRATIONS)}); upgrade the reconciler")
            for i in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # ---- revisions ---------------------------------------------------------------------------

    def record_revision(self, revision: str, applied_at: datetime, counts: Mapping[str, int],
                        specs: Mapping[str, dict[str, Any]], hashes: Mapping[str, str]) -> int:
        """Content-addressed: each distinct spec is stored once; a revision stores name -> hash.

        `specs` needs to hold only the specs that may be new (the plan's additions and changes);
        every hash in `hashes` must then be stored already or be among them.
        """
        snapshot = zlib.compress(json.dumps(dict(hashes), separators=(",", ":")).encode(), 1)
        with self._write() as db:
            # A generator, not a list: 10,000 specs' JSON never exists at once (resident memory).
            db.executemany("INSERT OR IGNORE INTO specs (hash, spec) VALUES (?, ?)",
                           ((hashes[n], json.dumps(spec, sort_keys=True)) for n, spec in specs.items()))
            cur = db.execute("INSERT INTO revisions (revision, applied_at, counts, snapshot) VALUES (?, ?, ?, ?)",
                             (revision, to_micros(applied_at), json.dumps(dict(counts)), snapshot))
            return int(cur.lastrowid or 0)

    def last_revision(self) -> AppliedRevision | None:
        revisions = self.revisions(limit=1)
        return revisions[0] if revisions else None

    def revisions(self, limit: int = 20) -> list[AppliedRevision]:
        with self._rlock:
            rows = self._rdb.execute("SELECT seq, revision, applied_at, counts, snapshot FROM revisions "
                                    "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [AppliedRevision(seq, rev, from_micros(at), json.loads(counts), json.loads(zlib.decompress(snap)))
                for seq, rev, at, counts, snap in rows]

    def specs(self, hashes: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        wanted = set(hashes.values())
        found: dict[str, dict[str, Any]] = {}
        items = list(wanted)
        with self._rlock:
            for i in range(0, len(items), 500):
                chunk = items[i:i + 500]
                for h, spec in self._rdb.execute(
                        f"SELECT hash, spec FROM specs WHERE hash IN ({','.join('?' * len(chunk))})", chunk):
                    found[h] = json.loads(spec)
        return {name: found[h] for name, h in hashes.items() if h in found}

    # ---- runs ---------------------------------------------------------------------------------

    def claim(self, schedule: str, slot: datetime, *, attempt: int, trigger: str, revision: str,
              started_at: datetime, owner: str = "", max_runs: int | None = None) -> int | None:
        """Insert under the UNIQUE (schedule, slot, attempt) constraint: only one process wins.

        A first attempt of a scheduled slot counts towards `max_runs`; once reached, nothing more
        is claimed for that schedule (the check and the count are one transaction).
        """
        counts = attempt == 1 and trigger in ("schedule", "catchup")
        with self._write() as db:
            if counts and max_runs is not None:
                row = db.execute("SELECT started FROM counters WHERE schedule = ?", (schedule,)).fetchone()
                if row and row[0] >= max_runs:
                    return None
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, owner) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                (schedule, to_micros(slot), attempt, trigger, revision, to_micros(started_at), owner))
            if cur.rowcount != 1 or not cur.lastrowid:
                return None
            if counts:
                db.execute("INSERT INTO counters (schedule, started) VALUES (?, 1) "
                           "ON CONFLICT (schedule) DO UPDATE SET started = started + 1", (schedule,))
            return int(cur.lastrowid)

    def started_count(self, schedule: str) -> int:
        with self._rlock:
            row = self._rdb.execute("SELECT started FROM counters WHERE schedule = ?", (schedule,)).fetchone()
        return int(row[0]) if row else 0

    def finish(self, run_id: int, outcome: Outcome, *, keep: int | None = None) -> None:
        """Record how a run ended; with `keep`, prune that schedule's history in the same write."""
        with self._write() as db:
            row = db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, exit_code = ?, http_status = ?, error = ?, "
                "output = ?, output_dropped = ? WHERE id = ? RETURNING schedule",
                (outcome.status, to_micros(outcome.finished_at), outcome.exit_code, outcome.http_status,
                 outcome.error, outcome.output, outcome.output_dropped, run_id)).fetchone()
            if keep is not None and row is not None:
                self._prune(db, row[0], keep)

    def record(self, schedule: str, slot: datetime, *, attempt: int, trigger: str, revision: str,
               outcome: Outcome, started_at: datetime | None = None) -> int | None:
        """A run that never started (skipped, missed): claimed and finished in one write."""
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, "
                "finished_at, exit_code, http_status, error, output, output_dropped) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (schedule, to_micros(slot), attempt, trigger, outcome.status, revision,
                 to_micros(started_at) if started_at else None, to_micros(outcome.finished_at),
                 outcome.exit_code, outcome.http_status, outcome.error, outcome.output, outcome.output_dropped))
            return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None

    def run(self, run_id: int) -> RunRecord | None:
        with self._rlock:
            row = self._rdb.execute(f"SELECT {_RUN_COLUMNS}, output, output_dropped FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()
        return _record(row, with_output=True) if row else None

    def runs(self, schedule: str | None = None, *, status: str | None = None, since: datetime | None = None,
             limit: int = 50, before_id: int | None = None) -> list[RunRecord]:
        where, args = _filters(schedule, status, since, before_id)
        with self._rlock:
            rows = self._rdb.execute(f"SELECT {_RUN_COLUMNS} FROM runs{where} ORDER BY id DESC LIMIT ?",
                                     (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def count_runs(self, schedule: str | None = None, status: str | None = None) -> int:
        where, args = _filters(schedule, status, None, None)
        with self._rlock:
            return int(self._rdb.execute(f"SELECT count(*) FROM runs{where}", args).fetchone()[0])

    def last_slot(self, schedule: str) -> datetime | None:
        with self._rlock:
            row = self._rdb.execute("SELECT max(slot) FROM runs WHERE schedule = ? AND trigger != 'manual'",
                                   (schedule,)).fetchone()
        return from_micros(row[0]) if row and row[0] is not None else None

    def last_slots(self) -> dict[str, datetime]:
        """The newest non-manual slot of every schedule, in one query (catch-up at start-up)."""
        with self._rlock:
            rows = self._rdb.execute("SELECT schedule, max(slot) FROM runs WHERE trigger != 'manual' "
                                    "GROUP BY schedule").fetchall()
        return {name: from_micros(slot) for name, slot in rows}

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest run of every schedule, in one query (the dashboard's 'last run' column)."""
        with self._rlock:
            rows = self._rdb.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN "
                                     "(SELECT max(id) FROM runs GROUP BY schedule)").fetchall()
        return {r[1]: _record(r) for r in rows}

    def open_runs(self) -> list[tuple[RunRecord, str]]:
        """Runs still marked running, with the owner that claimed them."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_RUN_COLUMNS}, owner FROM runs WHERE status = 'running' "
                                    "ORDER BY id").fetchall()
        return [(_record(r), r[12] or "") for r in rows]

    def set_processes(self, run_id: int, processes: str) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET processes = ? WHERE id = ?", (processes, run_id))

    def processes(self, run_id: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT processes FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def prune(self, schedule: str, keep: int) -> int:
        """Keep at most `keep` finished runs of a schedule (the newest)."""
        with self._write() as db:
            return self._prune(db, schedule, keep)

    @staticmethod
    def _prune(db: sqlite3.Connection, schedule: str, keep: int) -> int:
        cur = db.execute(
            "DELETE FROM runs WHERE schedule = ? AND status != 'running' AND id < ("
            "  SELECT min(id) FROM (SELECT id FROM runs WHERE schedule = ? AND status != 'running' "
            "  ORDER BY id DESC LIMIT ?))", (schedule, schedule, keep))
        return cur.rowcount


def _filters(schedule: str | None, status: str | None, since: datetime | None,
             before_id: int | None) -> tuple[str, list[str | int]]:
    """A WHERE clause (or nothing) and its arguments; every column here is indexed or the key."""
    clauses = [(c, v) for c, v in (("schedule = ?", schedule), ("status = ?", status),
                                   ("slot >= ?", to_micros(since) if since is not None else None),
                                   ("id < ?", before_id)) if v is not None]
    if not clauses:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in clauses), [v for _, v in clauses]


def _record(row: Any, *, with_output: bool = False) -> RunRecord:
    (rid, schedule, slot, attempt, trigger, status, revision, started, finished, code, http, error) = row[:12]
    return RunRecord(
        id=rid, schedule=schedule, slot=from_micros(slot), attempt=attempt, trigger=trigger, status=status,
        revision=revision, started_at=from_micros(started) if started is not None else None,
        finished_at=from_micros(finished) if finished is not None else None, exit_code=code,
        http_status=http, error=error,
        output=row[12] if with_output else None, output_dropped=row[13] if with_output else 0,
    )
