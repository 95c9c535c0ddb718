"""The SQLite ledger: WAL, synchronous=FULL, BEGIN IMMEDIATE for every write, versioned schema.

One connection shared under a lock: SQLite serialises writers anyway, and one connection keeps
the claim (an INSERT under a UNIQUE constraint) and its visibility simple. Other processes (a
second reconciler, `reconciler history`) open their own connections; WAL lets them read while
we write, and `busy_timeout` makes concurrent writers wait instead of failing.

The WAL is bounded: `journal_size_limit` truncates it whenever a checkpoint resets it, and a WAL
that grew past that anyway (a reader pinned old pages during a burst) is checkpointed with
TRUNCATE as soon as it can be. A full volume is reported once, and runs that end meanwhile are
finished as soon as a write succeeds again.

Leases and heartbeats are on the clock of the host that holds the file, read by SQLite itself.

Group commit: claims, finishes, skips and process records from concurrent threads share one
transaction, so one fsync (synchronous=FULL) covers many runs. Each caller still returns only
after the transaction holding its write has committed, so a claim is durable before its job
starts; each write sits in a savepoint of its own, so one that fails takes no other with it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from reconciler.core.policy import Cause, Pause, RunStatus
from reconciler.ledger.base import (
    DEFAULT_LEASE,
    REVISIONS_KEEP,
    Action,
    Activity,
    AppliedRevision,
    AuditRecord,
    Commit,
    Copied,
    ExpiredRun,
    Health,
    LedgerError,
    LedgerFull,
    NoSuchLedger,
    Outcome,
    PoolFull,
    ReplicaRecord,
    RevisionSuperseded,
    RunRecord,
    SpecChange,
    Stored,
    StoredActivity,
    StoredAudit,
    StoredCounter,
    StoredPause,
    StoredRevision,
    StoredRun,
    StoredSpec,
    from_micros,
    pack,
    replay,
    to_micros,
)

T = TypeVar("T")

DEFAULT_PATH = Path(".reconciler") / "ledger.db"
# What the WAL is cut back to at each reset; SQLite's own checkpoints start at ~4 MiB of WAL.
WAL_LIMIT = 4 * 1024 * 1024
# A WAL larger than this was not reset by those checkpoints: checkpoint it ourselves (TRUNCATE),
# and if readers still hold it, try again after this many writes.
_WAL_CHECKPOINT_AT = 2 * WAL_LIMIT
_CHECKPOINT_RETRY_WRITES = 64
_BUSY_MS = 30_000
# The database's clock in µs since the epoch: the host's, read by SQLite itself (millisecond
# resolution; one value for a whole statement), so that every process sharing the file agrees.
_NOW = "(CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000)"
_DAY = 86_400_000_000

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
    # v3: `concurrency: forbid` held by the database, for any number of processes: at most one
    # exclusive run of a schedule is running (PostgreSQL uses the same partial unique index).
    """
    ALTER TABLE runs ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX runs_one_exclusive_running ON runs (schedule) WHERE status = 'running' AND exclusive = 1;
    """,
    # v4: where a run's processes live (JSON: host, boot, process group, cgroup), so that a restart can
    # stop what a killed reconciler left running.
    """
    ALTER TABLE runs ADD COLUMN processes TEXT;
    """,
    # v5: leases. Replicas heartbeat; a running run is owned until `lease_until` (the database's
    # clock, µs since the epoch) unless renewed. Runs claimed before this version get one lease
    # from the upgrade, then are reaped if no one renews them.
    f"""
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        version TEXT NOT NULL,
        revision TEXT,
        started INTEGER NOT NULL,
        heartbeat INTEGER NOT NULL,
        lease_until INTEGER NOT NULL,
        stopped INTEGER
    ) WITHOUT ROWID;
    ALTER TABLE runs ADD COLUMN lease_until INTEGER;
    CREATE INDEX runs_running_by_owner ON runs (owner) WHERE status = 'running';
    UPDATE runs SET lease_until = {_NOW} + 20000000 WHERE status = 'running'
    """,
    # v6: revisions stored as changes against their parent. A row without a parent (every row
    # before this version) is a base holding every name; a row with one holds only the names
    # that differ from it (a removed name maps to null).
    """
    ALTER TABLE revisions ADD COLUMN parent INTEGER;
    """,
    # v7: several replicas. A run another replica asked its owner to stop (`replace`); which
    # replica applied each revision; the order in which revisions were first seen, and each
    # schedule's head (its hash in the newest revision, NULL once removed), so that a replica on
    # an older revision cannot claim what a newer one changed or removed.
    """
    ALTER TABLE runs ADD COLUMN stop_requested TEXT;
    CREATE INDEX runs_stop_requested ON runs (owner) WHERE status = 'running' AND stop_requested IS NOT NULL;
    ALTER TABLE revisions ADD COLUMN replica TEXT;
    CREATE TABLE revision_ranks (
        revision TEXT PRIMARY KEY,
        rank INTEGER NOT NULL,
        replica TEXT,
        ranked_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE schedule_heads (
        schedule TEXT PRIMARY KEY,
        hash TEXT,
        revision TEXT NOT NULL,
        rank INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # v8: the audit trail, keyed by the revision's seq and kept apart from `revisions`: who
    # committed each applied revision, and what it did to each schedule it changed.
    """
    CREATE TABLE audit_revisions (
        seq INTEGER PRIMARY KEY,
        revision TEXT NOT NULL,
        applied_at INTEGER NOT NULL,
        commit_sha TEXT,
        author TEXT,
        email TEXT,
        authored_at INTEGER,
        subject TEXT
    );
    CREATE TABLE audit_changes (
        schedule TEXT NOT NULL,
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        fields TEXT NOT NULL,
        PRIMARY KEY (schedule, seq)
    ) WITHOUT ROWID;
    CREATE INDEX audit_changes_by_seq ON audit_changes (seq);
    """,
    # v9: what each run used (peak memory in bytes, CPU seconds in user and system mode), where measured.
    """
    ALTER TABLE runs ADD COLUMN peak_memory INTEGER;
    ALTER TABLE runs ADD COLUMN cpu_user REAL;
    ALTER TABLE runs ADD COLUMN cpu_system REAL
    """,
    # v10: operators' pauses, one per schedule (`reconciler pause`): who, when (µs), why, until (µs or NULL).
    """
    CREATE TABLE pauses (
        schedule TEXT PRIMARY KEY,
        paused_by TEXT NOT NULL,
        paused_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        until INTEGER
    ) WITHOUT ROWID;
    """,
    # v11: operators' activity (every action through the API or a command): who, when (µs, the
    # ledger's clock), what (targets: a JSON array of schedule names), why, and details (JSON).
    """
    CREATE TABLE activity (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        targets TEXT NOT NULL,
        reason TEXT NOT NULL,
        details TEXT NOT NULL
    );
    """,
    # v12: named pools (pools.yaml): a run's pool, so that a claim counts the pool's running runs.
    """
    ALTER TABLE runs ADD COLUMN pool TEXT;
    CREATE INDEX runs_pool_running ON runs (pool) WHERE status = 'running' AND pool IS NOT NULL
    """,
)

# A revision's chain, from it back to its base (the row without a parent), newest first.
_CHAIN = ("WITH RECURSIVE chain(seq, parent, snapshot, depth) AS ("
          "SELECT seq, parent, snapshot, 0 FROM revisions WHERE seq = ? UNION ALL "
          "SELECT r.seq, r.parent, r.snapshot, c.depth + 1 FROM revisions r JOIN chain c ON r.seq = c.parent) "
          "SELECT parent, snapshot FROM chain ORDER BY depth")

_RUN_COLUMNS = ("id, schedule, slot, attempt, trigger, status, revision, started_at, finished_at, "
                "exit_code, http_status, error, owner, peak_memory, cpu_user, cpu_system")


class SqliteLedger:
    def __init__(self, path: str | Path = DEFAULT_PATH, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise NoSuchLedger(f"{self.path}: no such ledger")
        self._lock = threading.RLock()
        self._rlock = threading.Lock()
        self.on_write_state: Callable[[str | None], None] | None = None
        self._full: str | None = None  # why writes fail for lack of space, while they do
        self._deferred: list[tuple[int, Outcome, int | None]] = []  # finishes waiting for space
        self._flushing = False
        self._writes = 0
        self._next_checkpoint = 0
        self.commits = 0  # transactions committed by this connection (grouped writes count once)
        self._pending: list[_Op[Any]] = []  # grouped writes waiting for the next transaction
        self._plock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=_BUSY_MS / 1000)
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"{self.path}: cannot open the ledger: {getattr(e, 'strerror', None) or e}") from e
        try:
            self._enter_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # The writer appends runs and updates single rows: a small page cache costs it nothing,
            # and keeps 10,000-spec revisions from leaving megabytes cached (reads have their own).
            self._db.execute("PRAGMA cache_size=-512")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self._migrate()
            # Reads (the API, the dashboard) use their own connection: under WAL they never wait
            # for the runner's writes, and the writers never wait for a slow page.
            self._rdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                        timeout=_BUSY_MS / 1000)
        except sqlite3.Error as e:
            self._db.close()
            raise LedgerError(f"{self.path}: cannot open the ledger: {e}") from e
        except LedgerError:
            self._db.close()
            raise

    def _enter_wal(self) -> None:
        """Switch to WAL. SQLite does not call the busy handler for this switch, so replicas that
        open one new file together would fail with "database is locked": wait for it ourselves."""
        deadline = time.monotonic() + _BUSY_MS / 1000
        pause = 0.005
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def close(self) -> None:
        with self._lock, self._rlock:
            self._db.close()
            self._rdb.close()

    @contextmanager
    def _write(self, *, quiet: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction. SQLITE_FULL becomes LedgerFull, and a change of state (full, or
        writable again) is reported once through `on_write_state`, which must not use the ledger.
        `quiet` writes (heartbeats: small updates in place, which may fit where a claim does not)
        raise LedgerFull too but change no state, so that the report does not flap."""
        state: list[str | None] = []
        try:
            with self._lock:
                if self._deferred and not self._flushing:
                    self._flush_deferred()
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        yield self._db
                        self._db.execute("COMMIT")
                    except BaseException:
                        if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                            self._db.execute("ROLLBACK")
                        raise
                except sqlite3.Error as e:
                    if not _is_full(e):
                        raise
                    if quiet:
                        raise LedgerFull(f"{self.path}: the ledger cannot be written: {e}") from e
                    if self._full is None:
                        self._full = f"{self.path}: the ledger cannot be written: {e}"
                        state.append(self._full)
                        self._checkpoint()  # moving the WAL into the database may free space
                    raise LedgerFull(self._full) from e
                self.commits += 1
                if self._full is not None and not quiet:
                    self._full = None
                    state.append(None)
                self._writes += 1
                if self._writes >= self._next_checkpoint:
                    self._bound_wal()
        finally:
            if state and self.on_write_state is not None:
                self.on_write_state(state[0])

    def _grouped(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` in the next write transaction, with whatever other threads queued meanwhile.
        Whoever takes the write lock first runs every queued op, in order; the others find theirs
        done when they get the lock. Returns (or raises) once the transaction has committed."""
        item = _Op(op)
        with self._plock:
            self._pending.append(item)
        with self._lock:
            if not item.done:
                with self._plock:
                    batch, self._pending = self._pending, []
                self._run_group(batch)
        return item.result()

    def _run_group(self, batch: list[_Op[Any]]) -> None:
        try:
            with self._write() as db:
                for item in batch:
                    db.execute("SAVEPOINT op")
                    try:
                        item.value = item.op(db)
                    except sqlite3.Error as e:
                        if _is_full(e):
                            raise  # the whole transaction is lost: every op in it fails alike
                        item.error = e
                        db.execute("ROLLBACK TO op")
                    except Exception as e:
                        item.error = e
                        db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
        except BaseException as e:
            for item in batch:
                item.value, item.error = None, e
            if not isinstance(e, Exception):
                raise
        finally:
            for item in batch:
                item.done = True

    def _flush_deferred(self) -> None:
        """Finish, in order, the runs whose end could not be written; stop at the first that
        still cannot (the rest wait for the next write)."""
        self._flushing = True
        try:
            while self._deferred:
                run_id, outcome, keep = self._deferred[0]
                try:
                    self._finish(run_id, outcome, keep)
                except LedgerFull:
                    return
                self._deferred.pop(0)
        finally:
            self._flushing = False

    def _bound_wal(self) -> None:
        try:
            size = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        if size > _WAL_CHECKPOINT_AT and not self._checkpoint():
            self._next_checkpoint = self._writes + _CHECKPOINT_RETRY_WRITES

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it, without waiting for readers (a busy
        checkpoint is tried again later). True if the WAL was emptied."""
        try:
            self._db.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self._db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        except sqlite3.Error:
            return False
        return not busy

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
                        specs: Mapping[str, dict[str, Any]], hashes: Mapping[str, str], *,
                        parent: int | None = None, changes: Mapping[str, str | None] | None = None,
                        replica: str | None = None) -> int:
        """Content-addressed: each distinct spec is stored once; a revision stores name -> hash,
        whole (a base) or as its changes against `parent` (see the contract)."""
        with self._write() as db:
            # A generator, not a list: 10,000 specs' JSON never exists at once (resident memory).
            db.executemany("INSERT OR IGNORE INTO specs (hash, spec) VALUES (?, ?)",
                           ((hashes[n], json.dumps(spec, sort_keys=True)) for n, spec in specs.items()))
            if (parent is not None and changes is not None
                    and db.execute("SELECT 1 FROM revisions WHERE seq = ?", (parent,)).fetchone()):
                blob, stored_parent = pack(changes), parent
            else:
                blob, stored_parent = pack(hashes), None
            cur = db.execute("INSERT INTO revisions (revision, applied_at, counts, snapshot, parent, replica) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (revision, to_micros(applied_at), json.dumps(dict(counts)), blob, stored_parent,
                              replica))
            return int(cur.lastrowid or 0)

    def advance_revision(self, revision: str, hashes: Mapping[str, str], *, replica: str,
                         previous: str | None = None,
                         changes: Mapping[str, str | None] | None = None) -> str | None:
        with self._write() as db:  # BEGIN IMMEDIATE: advances are serialised
            newest = db.execute("SELECT revision, rank FROM revision_ranks ORDER BY rank DESC LIMIT 1").fetchone()
            mine = db.execute("SELECT rank FROM revision_ranks WHERE revision = ?", (revision,)).fetchone()
            top = newest[1] if newest else 0
            reverted = newest is not None and previous == newest[0] and previous != revision
            if mine is not None and not reverted:
                return None if mine[0] == top else str(newest[0])
            rank = top + 1
            db.execute("INSERT OR REPLACE INTO revision_ranks (revision, rank, replica, ranked_at) "
                       f"VALUES (?, ?, ?, {_NOW})", (revision, rank, replica))
            upsert = ("INSERT INTO schedule_heads (schedule, hash, revision, rank) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (schedule) DO UPDATE SET hash = excluded.hash, revision = excluded.revision, "
                      "rank = excluded.rank")
            if changes is not None and newest is not None and previous == newest[0]:
                db.executemany(upsert, ((n, h, revision, rank) for n, h in changes.items()))
                return None
            db.executemany(upsert, ((n, h, revision, rank) for n, h in hashes.items()))
            db.execute("UPDATE schedule_heads SET hash = NULL, revision = ?, rank = ? WHERE rank < ?",
                       (revision, rank, rank))
            return None

    def revision_heads(self) -> dict[str, tuple[str | None, str]]:
        with self._rlock:
            rows = self._rdb.execute("SELECT schedule, hash, revision FROM schedule_heads").fetchall()
        return {name: (h, rev) for name, h, rev in rows}

    def last_revision(self) -> AppliedRevision | None:
        with self._rlock:
            row = self._rdb.execute("SELECT max(seq) FROM revisions").fetchone()
        return self.revision(row[0]) if row and row[0] is not None else None

    def revision(self, seq: int) -> AppliedRevision | None:
        with self._rlock:
            self._rdb.execute("BEGIN")  # the row and its chain from one snapshot of the file
            try:
                row = self._rdb.execute("SELECT seq, revision, applied_at, counts FROM revisions WHERE seq = ?",
                                        (seq,)).fetchone()
                chain = self._rdb.execute(_CHAIN, (seq,)).fetchall() if row else []
            finally:
                self._rdb.execute("COMMIT")
        if row is None:
            return None
        seq, rev, at, counts = row
        return AppliedRevision(seq, rev, from_micros(at), json.loads(counts), _whole(self.path, seq, chain))

    def revisions(self, limit: int = 50) -> list[tuple[int, str, datetime, dict[str, int]]]:
        with self._rlock:
            rows = self._rdb.execute("SELECT seq, revision, applied_at, counts FROM revisions ORDER BY seq DESC "
                                     "LIMIT ?", (limit,)).fetchall()
        return [(seq, rev, from_micros(at), json.loads(counts)) for seq, rev, at, counts in rows]

    def prune_revisions(self, keep: int = REVISIONS_KEEP) -> int:
        # The revisions runs were claimed under, read outside the write (a scan of every run must
        # not hold up claims); a run claimed meanwhile is under the newest revision, kept anyway.
        with self._rlock:
            referenced = [r for (r,) in self._rdb.execute("SELECT DISTINCT revision FROM runs")]
        with self._write() as db:
            row = db.execute("SELECT seq FROM revisions ORDER BY seq DESC LIMIT 1 OFFSET ?",
                             (max(keep, 1) - 1,)).fetchone()
            if row is None:
                return 0
            cut = int(row[0])
            for i in range(0, len(referenced), 500):
                chunk = referenced[i:i + 500]
                oldest = db.execute(f"SELECT min(seq) FROM revisions WHERE revision IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchone()[0]
                if oldest is not None:
                    cut = min(cut, int(oldest))
            for (seq,) in db.execute("SELECT seq FROM revisions WHERE seq >= ? AND parent < ? ORDER BY seq",
                                     (cut, cut)).fetchall():
                whole = _whole(self.path, seq, db.execute(_CHAIN, (seq,)).fetchall())
                db.execute("UPDATE revisions SET parent = NULL, snapshot = ? WHERE seq = ?", (pack(whole), seq))
            removed = db.execute("DELETE FROM revisions WHERE seq < ?", (cut,)).rowcount
            if removed:
                used: set[str] = set()
                for (blob,) in db.execute("SELECT snapshot FROM revisions"):
                    used.update(h for h in json.loads(zlib.decompress(blob)).values() if h is not None)
                stored = [h for (h,) in db.execute("SELECT hash FROM specs")]
                db.executemany("DELETE FROM specs WHERE hash = ?", ((h,) for h in stored if h not in used))
            return int(removed)

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

    def claim(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
              started_at: datetime, owner: str = "", counted: bool = False, max_runs: int | None = None,
              exclusive: bool = False, lease: timedelta = DEFAULT_LEASE,
              spec_hash: str | None = None, pool: str | None = None, pool_size: int | None = None) -> int | None:
        """Insert under the UNIQUE (schedule, slot, attempt) constraint: only one process wins.

        A `counted` claim counts towards `max_runs`; once reached, no counted claim succeeds for
        that schedule (the check and the count are one transaction).

        `exclusive` (concurrency: forbid): the partial unique index lets one exclusive run of a
        schedule be running; the NOT EXISTS, in the same transaction, also waits out runs claimed
        before the schedule became `forbid`.

        `pool_size`: the pool's running runs are counted in the same write transaction (BEGIN
        IMMEDIATE serialises every writer, other processes' too), and PoolFull raised when full.
        """
        def op(db: sqlite3.Connection) -> int | None:
            if spec_hash is not None:
                newer = db.execute(
                    "SELECT h.revision FROM schedule_heads h WHERE h.schedule = ? AND h.hash IS NOT ? AND h.rank > "
                    "coalesce((SELECT rank FROM revision_ranks WHERE revision = ?), h.rank)",
                    (schedule, spec_hash, revision)).fetchone()
                if newer is not None:
                    raise RevisionSuperseded(schedule, newer[0])
            if pool is not None and pool_size is not None:
                running = db.execute("SELECT count(*) FROM runs WHERE pool = ? AND status = 'running'",
                                     (pool,)).fetchone()[0]
                if running >= pool_size:
                    taken = db.execute("SELECT 1 FROM runs WHERE schedule = ? AND slot = ? AND attempt = ?",
                                       (schedule, to_micros(slot), attempt)).fetchone()
                    if taken is not None:
                        return None
                    raise PoolFull(pool, pool_size, running)
            if counted and max_runs is not None:
                row = db.execute("SELECT started FROM counters WHERE schedule = ?", (schedule,)).fetchone()
                if row and row[0] >= max_runs:
                    return None
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, owner, "
                f"exclusive, lease_until, pool) SELECT ?, ?, ?, ?, 'running', ?, ?, ?, ?, {_NOW} + ?, ? "
                "WHERE NOT ? OR NOT EXISTS (SELECT 1 FROM runs WHERE schedule = ? AND status = 'running')",
                (schedule, to_micros(slot), attempt, cause, revision, to_micros(started_at), owner, exclusive,
                 _micros(lease), pool, exclusive, schedule))
            if cur.rowcount != 1 or not cur.lastrowid:
                return None
            if counted:
                db.execute("INSERT INTO counters (schedule, started) VALUES (?, 1) "
                           "ON CONFLICT (schedule) DO UPDATE SET started = started + 1", (schedule,))
            return int(cur.lastrowid)

        return self._grouped(op)

    def pool_running(self) -> dict[str, int]:
        with self._rlock:
            rows = self._rdb.execute("SELECT pool, count(*) FROM runs WHERE pool IS NOT NULL AND status = 'running' "
                                     "GROUP BY pool").fetchall()
        return {str(p): int(n) for p, n in rows}

    def started_count(self, schedule: str) -> int:
        with self._rlock:
            row = self._rdb.execute("SELECT started FROM counters WHERE schedule = ?", (schedule,)).fetchone()
        return int(row[0]) if row else 0

    def finish(self, run_id: int, outcome: Outcome, *, keep: int | None = None) -> bool:
        """Record how a running run ended; with `keep`, prune that schedule's history in the same
        write. Without space, the end is kept and written before the next write that succeeds."""
        try:
            return self._finish(run_id, outcome, keep)
        except LedgerFull:
            with self._lock:
                self._deferred.append((run_id, outcome, keep))
            return True

    def _finish(self, run_id: int, outcome: Outcome, keep: int | None) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, exit_code = ?, http_status = ?, error = ?, "
                "output = ?, output_dropped = ?, peak_memory = ?, cpu_user = ?, cpu_system = ? "
                  "WHERE id = ? AND status = 'running' RETURNING schedule",
                (outcome.status, to_micros(outcome.finished_at), outcome.exit_code, outcome.http_status,
                 outcome.error, outcome.output, outcome.output_dropped, outcome.peak_memory, outcome.cpu_user,
                 outcome.cpu_system, run_id)).fetchone()
            if keep is not None and row is not None:
                self._prune(db, row[0], keep)
            return row is not None

        return self._grouped(op)

    def record(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
               outcome: Outcome, started_at: datetime | None = None) -> int | None:
        """A run that never started (skipped, missed): claimed and finished in one write."""
        def op(db: sqlite3.Connection) -> int | None:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, "
                "finished_at, exit_code, http_status, error, output, output_dropped) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (schedule, to_micros(slot), attempt, cause, outcome.status, revision,
                 to_micros(started_at) if started_at else None, to_micros(outcome.finished_at),
                 outcome.exit_code, outcome.http_status, outcome.error, outcome.output, outcome.output_dropped))
            return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None

        return self._grouped(op)

    def run(self, run_id: int) -> RunRecord | None:
        with self._rlock:
            row = self._rdb.execute(f"SELECT {_RUN_COLUMNS}, output, output_dropped FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()
        return _record(row, with_output=True) if row else None

    def runs(self, schedule: str | None = None, *, status: RunStatus | None = None, since: datetime | None = None,
             limit: int = 50, before_id: int | None = None) -> list[RunRecord]:
        where, args = _filters(schedule, status, since, before_id)
        with self._rlock:
            rows = self._rdb.execute(f"SELECT {_RUN_COLUMNS} FROM runs{where} ORDER BY id DESC LIMIT ?",
                                     (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def last_slots(self, causes: Collection[Cause]) -> dict[str, datetime]:
        """The newest slot of every schedule among runs of these causes, in one query (catch-up at
        start-up)."""
        wanted = sorted(causes)
        with self._rlock:
            rows = self._rdb.execute(f"SELECT schedule, max(slot) FROM runs WHERE trigger IN "
                                     f"({','.join('?' * len(wanted))}) GROUP BY schedule", wanted).fetchall()
        return {name: from_micros(slot) for name, slot in rows}

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest run of every schedule, in one query (the dashboard's 'last run' column)."""
        with self._rlock:
            rows = self._rdb.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN "
                                     "(SELECT max(id) FROM runs GROUP BY schedule)").fetchall()
        return {r[1]: _record(r) for r in rows}

    def run_counts(self) -> dict[RunStatus, int]:
        with self._rlock:
            rows = self._rdb.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
        return {RunStatus(status): int(n) for status, n in rows}

    def recent_runs(self, schedules: Collection[str], per: int) -> dict[str, list[RunRecord]]:
        """SQLite has no LATERAL: each schedule's `per`-th newest id is found first (an index walk of
        `per` entries), then only the index range above it is read."""
        names, found = sorted(set(schedules)), dict[str, list[RunRecord]]()
        if per < 1:
            return {}
        with self._rlock:
            for i in range(0, len(names), 500):
                chunk = names[i:i + 500]
                rows = self._rdb.execute(
                    f"WITH names(name) AS (VALUES {','.join(['(?)'] * len(chunk))}), "
                    "bounds AS (SELECT name, (SELECT id FROM runs WHERE schedule = names.name "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?) AS low FROM names) "
                    f"SELECT {', '.join('r.' + c.strip() for c in _RUN_COLUMNS.split(','))} FROM bounds "
                    "JOIN runs r ON r.schedule = bounds.name AND r.id >= coalesce(bounds.low, 0) "
                    "ORDER BY r.schedule, r.id DESC", (*chunk, per - 1)).fetchall()
                for r in rows:
                    found.setdefault(r[1], []).append(_record(r))
        return found

    def status_counts(self, schedule: str, since: datetime) -> dict[RunStatus, int]:
        with self._rlock:
            rows = self._rdb.execute("SELECT status, count(*) FROM runs WHERE schedule = ? AND slot >= ? "
                                     "GROUP BY status", (schedule, to_micros(since))).fetchall()
        return {RunStatus(status): int(n) for status, n in rows}

    def open_runs(self, schedule: str | None = None) -> list[tuple[RunRecord, str]]:
        """Runs still marked running (of one schedule, or all), with the owner that claimed them."""
        where, args = ("", ()) if schedule is None else (" AND schedule = ?", (schedule,))
        with self._lock:
            rows = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running'{where} "
                                    "ORDER BY id", args).fetchall()
        return [(_record(r), r[12] or "") for r in rows]

    def last_attempts(self, statuses: Collection[RunStatus], schedules: Collection[str]) -> list[RunRecord]:
        """Of these schedules, every slot whose newest attempt ended in one of `statuses`: that
        attempt, oldest first (the retries a stopped reconciler still owed)."""
        names, wanted = sorted(schedules), sorted(statuses)
        found: list[RunRecord] = []
        with self._rlock:
            for i in range(0, len(names), 500):
                chunk = names[i:i + 500]
                found.extend(_record(r) for r in self._rdb.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs r WHERE schedule IN ({','.join('?' * len(chunk))}) "
                    f"AND status IN ({','.join('?' * len(wanted))}) AND finished_at IS NOT NULL "
                    "AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.schedule = r.schedule AND n.slot = r.slot "
                    "AND n.attempt > r.attempt)", (*chunk, *wanted)))
        return sorted(found, key=lambda r: r.id)

    def set_processes(self, run_id: int, processes: str) -> None:
        self._grouped(lambda db: db.execute("UPDATE runs SET processes = ? WHERE id = ?", (processes, run_id)))

    def request_stop(self, schedule: str, *, owner: str, reason: str) -> list[tuple[int, str]]:
        with self._write() as db:
            rows = db.execute("UPDATE runs SET stop_requested = ? WHERE schedule = ? AND status = 'running' "
                              "AND owner IS NOT ? AND stop_requested IS NULL RETURNING id, owner",
                              (reason, schedule, owner)).fetchall()
        return sorted((int(i), o or "") for i, o in rows)

    def stop_requests(self, replica: str) -> dict[int, str]:
        with self._rlock:
            rows = self._rdb.execute("SELECT id, stop_requested FROM runs WHERE owner = ? AND status = 'running' "
                                     "AND stop_requested IS NOT NULL", (replica,)).fetchall()
        return {int(i): str(why) for i, why in rows}

    # ---- replicas and leases ---------------------------------------------------------------

    def register_replica(self, replica: str, *, host: str, pid: int, version: str, revision: str | None,
                         lease: timedelta) -> None:
        with self._write(quiet=True) as db:
            db.execute(f"DELETE FROM replicas WHERE lease_until < {_NOW} - ? AND NOT EXISTS (SELECT 1 FROM runs "
                       "WHERE status = 'running' AND owner = replicas.id)", (_DAY,))
            db.execute("INSERT OR REPLACE INTO replicas (id, host, pid, version, revision, started, heartbeat, "
                       f"lease_until, stopped) VALUES (?, ?, ?, ?, ?, {_NOW}, {_NOW}, {_NOW} + ?, NULL)",
                       (replica, host, pid, version, revision, _micros(lease)))

    def heartbeat(self, replica: str, *, lease: timedelta, revision: str | None = None) -> set[int] | None:
        with self._write(quiet=True) as db:
            cur = db.execute(f"UPDATE replicas SET heartbeat = {_NOW}, lease_until = {_NOW} + ?, "
                             "revision = coalesce(?, revision) WHERE id = ? AND stopped IS NULL",
                             (_micros(lease), revision, replica))
            if cur.rowcount != 1:
                return None
            rows = db.execute(f"UPDATE runs SET lease_until = {_NOW} + ? WHERE owner = ? AND status = 'running' "
                              f"AND lease_until >= {_NOW} RETURNING id", (_micros(lease), replica)).fetchall()
        return {int(r[0]) for r in rows}

    def deregister_replica(self, replica: str) -> None:
        with self._write(quiet=True) as db:
            db.execute(f"UPDATE replicas SET stopped = {_NOW}, lease_until = min(lease_until, {_NOW}) "
                       "WHERE id = ?", (replica,))

    def replicas(self) -> list[ReplicaRecord]:
        with self._rlock:
            rows = self._rdb.execute(
                "SELECT id, host, pid, version, revision, started, heartbeat, lease_until, stopped, "
                f"stopped IS NULL AND lease_until >= {_NOW}, (SELECT count(*) FROM runs WHERE status = 'running' "
                f"AND owner = replicas.id), {_NOW} - heartbeat FROM replicas ORDER BY started, id").fetchall()
        return [ReplicaRecord(rid, host, pid, version, revision, from_micros(started), from_micros(beat),
                              from_micros(until), from_micros(stopped) if stopped is not None else None,
                              bool(alive), runs, timedelta(microseconds=max(0, age)))
                for rid, host, pid, version, revision, started, beat, until, stopped, alive, runs, age in rows]

    def expired_runs(self) -> list[ExpiredRun]:
        with self._rlock:
            rows = self._rdb.execute(f"SELECT {_RUN_COLUMNS}, processes FROM runs WHERE status = 'running' "
                                     f"AND lease_until < {_NOW} ORDER BY id").fetchall()
        return [ExpiredRun(_record(r), r[12] or "", r[16]) for r in rows]

    def abandon(self, run_id: int, finished_at: datetime, error: str) -> bool:
        with self._write() as db:
            cur = db.execute("UPDATE runs SET status = 'abandoned', finished_at = ?, error = ? WHERE id = ? "
                             f"AND status = 'running' AND lease_until < {_NOW}",
                             (to_micros(finished_at), error, run_id))
            return cur.rowcount == 1

    # ---- copying a whole ledger ------------------------------------------------------------------

    def dump(self) -> Iterator[Stored]:
        # Its own connection: one read transaction is one snapshot under WAL, and writers go on.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_MS / 1000)
        try:
            db.execute("BEGIN")
            for h, spec in db.execute("SELECT hash, spec FROM specs ORDER BY hash").fetchall():
                yield StoredSpec(h, spec)
            for seq, rev, at, counts, snap, parent, replica in db.execute(
                    "SELECT seq, revision, applied_at, counts, snapshot, parent, replica FROM revisions "
                    "ORDER BY seq").fetchall():
                yield StoredRevision(seq, rev, from_micros(at), json.loads(counts), json.loads(zlib.decompress(snap)),
                                     parent, replica)
            for name, started in db.execute("SELECT schedule, started FROM counters ORDER BY schedule").fetchall():
                yield StoredCounter(name, started)
            last = 0
            while True:
                rows = db.execute(f"SELECT {_RUN_COLUMNS}, output, output_dropped, exclusive, processes, lease_until, "
                                  "pool FROM runs WHERE id > ? ORDER BY id LIMIT 500", (last,)).fetchall()
                if not rows:
                    break
                for r in rows:
                    yield StoredRun(_record(r, with_output=True), bool(r[18]), r[19],
                                    from_micros(r[20]) if r[20] is not None else None, r[21])
                last = rows[-1][0]
            for row in db.execute("SELECT schedule, paused_by, paused_at, reason, until FROM pauses "
                                  "ORDER BY schedule").fetchall():
                yield StoredPause(_pause(row))
            for row in db.execute("SELECT seq, revision, applied_at, commit_sha, author, email, authored_at, subject "
                                  "FROM audit_revisions ORDER BY seq").fetchall():
                changes = tuple(SpecChange(name, action, tuple(json.loads(fields))) for name, action, fields in
                                db.execute("SELECT schedule, action, fields FROM audit_changes WHERE seq = ? "
                                           "ORDER BY schedule", (row[0],)))
                yield StoredAudit(_audit_of(row, changes))
            last = 0
            while True:
                acts = db.execute("SELECT id, at, who, action, targets, reason, details FROM activity WHERE id > ? "
                                  "ORDER BY id LIMIT 500", (last,)).fetchall()
                if not acts:
                    break
                for row in acts:
                    yield StoredActivity(_activity_of(row))
                last = acts[-1][0]
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise LedgerError(f"{self.path}: cannot read the ledger: {e}") from e
        finally:
            db.close()

    def load(self, items: Iterable[Stored]) -> Copied:
        specs = revisions = counters = runs = pauses = audits = actions = 0
        with self._write() as db:
            for table in ("specs", "revisions", "counters", "runs", "pauses", "audit_revisions", "activity"):
                if db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                    raise LedgerError(f"{self.path}: the ledger is not empty (it has {table}); copy into a new one")
            for item in items:
                if isinstance(item, StoredSpec):
                    db.execute("INSERT INTO specs (hash, spec) VALUES (?, ?)", (item.hash, item.spec))
                    specs += 1
                elif isinstance(item, StoredRevision):
                    db.execute("INSERT INTO revisions (seq, revision, applied_at, counts, snapshot, parent, replica) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (item.seq, item.revision, to_micros(item.applied_at), json.dumps(item.counts),
                                pack(item.hashes), item.parent, item.replica))
                    revisions += 1
                elif isinstance(item, StoredCounter):
                    db.execute("INSERT INTO counters (schedule, started) VALUES (?, ?)", (item.schedule, item.started))
                    counters += 1
                elif isinstance(item, StoredPause):
                    p = item.pause
                    db.execute("INSERT INTO pauses (schedule, paused_by, paused_at, reason, until) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (p.schedule, p.by, to_micros(p.at), p.reason,
                                to_micros(p.until) if p.until is not None else None))
                    pauses += 1
                elif isinstance(item, StoredAudit):
                    a, c = item.record, item.record.commit
                    db.execute("INSERT INTO audit_revisions (seq, revision, applied_at, commit_sha, author, email, "
                               "authored_at, subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (a.seq, a.revision, to_micros(a.applied_at), c and c.sha, c and c.author,
                                c and c.email, to_micros(c.authored_at) if c else None, c and c.subject))
                    db.executemany("INSERT INTO audit_changes (schedule, seq, action, fields) VALUES (?, ?, ?, ?)",
                                   ((ch.schedule, a.seq, ch.action, json.dumps(list(ch.fields))) for ch in a.changes))
                    audits += 1
                elif isinstance(item, StoredActivity):
                    act = item.activity
                    db.execute("INSERT INTO activity (id, at, who, action, targets, reason, details) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (act.id, to_micros(act.at), act.who, act.action.value, json.dumps(list(act.targets)),
                                act.reason, json.dumps(act.details)))
                    actions += 1
                else:
                    r = item.record
                    db.execute(
                        "INSERT INTO runs (id, schedule, slot, attempt, trigger, status, revision, started_at, "
                        "finished_at, exit_code, http_status, error, output, output_dropped, owner, exclusive, "
                        "processes, lease_until, peak_memory, cpu_user, cpu_system, pool) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (r.id, r.schedule, to_micros(r.slot), r.attempt, r.cause, r.status, r.revision,
                         to_micros(r.started_at) if r.started_at else None,
                         to_micros(r.finished_at) if r.finished_at else None, r.exit_code, r.http_status, r.error,
                         r.output, r.output_dropped, r.owner or None, item.exclusive, item.processes,
                         to_micros(item.lease_until) if item.lease_until else None, r.peak_memory, r.cpu_user,
                         r.cpu_system, item.pool))
                    runs += 1
        return Copied(specs, revisions, counters, runs, pauses, audits, actions)

    # ---- health and the audit trail ----------------------------------------------------------

    def health(self, failing: Collection[RunStatus]) -> dict[str, Health]:
        wanted = sorted(failing)
        with self._rlock:
            ok = self._rdb.execute("SELECT schedule, id, finished_at FROM runs WHERE id IN "
                                   "(SELECT max(id) FROM runs WHERE status = 'succeeded' GROUP BY schedule)").fetchall()
            # Failing runs are few: each looks up its schedule's newest success by the index.
            bad = self._rdb.execute(
                f"SELECT schedule, count(*) FROM runs r WHERE status IN ({','.join('?' * len(wanted))}) "
                "AND id > coalesce((SELECT max(id) FROM runs s WHERE s.schedule = r.schedule "
                "AND s.status = 'succeeded'), 0) GROUP BY schedule", wanted).fetchall()
        out = {name: Health(from_micros(at) if at is not None else None, 0) for name, _, at in ok}
        for name, count in bad:
            out[name] = Health(out[name].last_success if name in out else None, int(count))
        return out

    def record_audit(self, seq: int, revision: str, applied_at: datetime, commit: Commit | None,
                     changes: Collection[SpecChange]) -> None:
        c = commit
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO audit_revisions (seq, revision, applied_at, commit_sha, author, email, "
                "authored_at, subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, revision, to_micros(applied_at), c and c.sha, c and c.author, c and c.email,
                 to_micros(c.authored_at) if c else None, c and c.subject))
            if cur.rowcount == 1:
                db.executemany("INSERT OR IGNORE INTO audit_changes (schedule, seq, action, fields) "
                               "VALUES (?, ?, ?, ?)",
                               ((ch.schedule, seq, ch.action, json.dumps(list(ch.fields))) for ch in changes))

    def audit(self, schedule: str | None = None, *, since: datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        where: list[str] = []
        args: list[str | int] = []
        if schedule is not None:
            where.append("seq IN (SELECT seq FROM audit_changes WHERE schedule = ?)")
            args.append(schedule)
        if since is not None:
            where.append("applied_at >= ?")
            args.append(to_micros(since))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._rlock:
            rows = self._rdb.execute("SELECT seq, revision, applied_at, commit_sha, author, email, authored_at, "
                                     f"subject FROM audit_revisions{clause} ORDER BY seq DESC LIMIT ?",
                                     (*args, limit)).fetchall()
            seqs = [r[0] for r in rows]
            changes: dict[int, list[SpecChange]] = {}
            for i in range(0, len(seqs), 500):
                chunk = seqs[i:i + 500]
                only = " AND schedule = ?" if schedule is not None else ""
                for name, seq, action, fields in self._rdb.execute(
                        f"SELECT schedule, seq, action, fields FROM audit_changes WHERE seq IN "
                        f"({','.join('?' * len(chunk))}){only} ORDER BY schedule",
                        (*chunk, *([schedule] if schedule is not None else []))):
                    changes.setdefault(seq, []).append(SpecChange(name, action, tuple(json.loads(fields))))
        return [_audit_of(row, tuple(changes.get(row[0], ()))) for row in rows]

    # ---- pauses ------------------------------------------------------------------------------

    def pause(self, pause: Pause) -> None:
        with self._write() as db:
            db.execute("DELETE FROM pauses WHERE until < ?", (to_micros(pause.at),))
            db.execute("INSERT OR REPLACE INTO pauses (schedule, paused_by, paused_at, reason, until) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (pause.schedule, pause.by, to_micros(pause.at), pause.reason,
                        to_micros(pause.until) if pause.until is not None else None))

    def resume(self, schedule: str) -> Pause | None:
        with self._write() as db:
            row = db.execute("DELETE FROM pauses WHERE schedule = ? "
                             "RETURNING schedule, paused_by, paused_at, reason, until", (schedule,)).fetchone()
        return _pause(row) if row else None

    def pauses(self) -> dict[str, Pause]:
        with self._rlock:
            rows = self._rdb.execute("SELECT schedule, paused_by, paused_at, reason, until FROM pauses").fetchall()
        return {r[0]: _pause(r) for r in rows}

    def slot_runs(self, schedule: str, start: datetime, end: datetime) -> dict[datetime, RunStatus]:
        with self._rlock:
            rows = self._rdb.execute("SELECT slot, status FROM runs WHERE schedule = ? AND slot >= ? AND slot < ? "
                                     "ORDER BY attempt", (schedule, to_micros(start), to_micros(end))).fetchall()
        return {from_micros(slot): RunStatus(status) for slot, status in rows}

    def record_activity(self, who: str, action: Action, targets: Sequence[str], reason: str = "",
                        details: Mapping[str, Any] | None = None) -> Activity:
        with self._write() as db:
            row = db.execute(f"INSERT INTO activity (at, who, action, targets, reason, details) "
                             f"VALUES ({_NOW}, ?, ?, ?, ?, ?) RETURNING id, at",
                             (who, action.value, json.dumps(list(targets)), reason,
                              json.dumps(dict(details or {})))).fetchone()
        return Activity(row[0], from_micros(row[1]), who, action, tuple(targets), reason, dict(details or {}))

    def activity(self, schedule: str | None = None, *, before_id: int | None = None,
                 limit: int = 50) -> list[Activity]:
        where: list[str] = []
        args: list[str | int] = []
        if schedule is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(activity.targets) WHERE value = ?)")
            args.append(schedule)
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._rlock:
            rows = self._rdb.execute(f"SELECT id, at, who, action, targets, reason, details FROM activity{clause} "
                                     "ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_activity_of(row) for row in rows]

    @staticmethod
    def _prune(db: sqlite3.Connection, schedule: str, keep: int) -> int:
        cur = db.execute(
            "DELETE FROM runs WHERE schedule = ? AND status != 'running' AND id < ("
            "  SELECT min(id) FROM (SELECT id FROM runs WHERE schedule = ? AND status != 'running' "
            "  ORDER BY id DESC LIMIT ?))", (schedule, schedule, keep))
        return cur.rowcount


def _whole(path: Path, seq: int, chain: list[tuple[int | None, bytes]]) -> dict[str, str]:
    """Replay a chain read newest first; its last row must be a base."""
    if not chain or chain[-1][0] is not None:
        raise LedgerError(f"{path}: revision {seq}'s chain of changes is broken (no base)")
    return replay(blob for _, blob in reversed(chain))


def _micros(duration: timedelta) -> int:
    return duration // timedelta(microseconds=1)


def _is_full(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "database or disk is full" in str(e)


def _filters(schedule: str | None, status: RunStatus | None, since: datetime | None,
             before_id: int | None) -> tuple[str, list[str | int]]:
    """A WHERE clause (or nothing) and its arguments; every column here is indexed or the key."""
    clauses = [(c, v) for c, v in (("schedule = ?", schedule), ("status = ?", status),
                                   ("slot >= ?", to_micros(since) if since is not None else None),
                                   ("id < ?", before_id)) if v is not None]
    if not clauses:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in clauses), [v for _, v in clauses]


def _record(row: Any, *, with_output: bool = False) -> RunRecord:
    (rid, schedule, slot, attempt, cause, status, revision, started, finished, code, http, error, owner) = row[:13]
    return RunRecord(
        id=rid, schedule=schedule, slot=from_micros(slot), attempt=attempt, cause=Cause(cause),
        status=RunStatus(status), revision=revision, started_at=from_micros(started) if started is not None else None,
        finished_at=from_micros(finished) if finished is not None else None, exit_code=code,
        http_status=http, error=error,
        output=row[16] if with_output else None, output_dropped=row[17] if with_output else 0, owner=owner or "",
        peak_memory=row[13], cpu_user=row[14], cpu_system=row[15],
    )


class _Op(Generic[T]):
    """One grouped write: its function, then its result or its error."""

    __slots__ = ("done", "error", "op", "value")

    def __init__(self, op: Callable[[sqlite3.Connection], T]) -> None:
        self.op = op
        self.value: T | None = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _pause(row: Any) -> Pause:
    schedule, by, at, reason, until = row
    return Pause(schedule, by, from_micros(at), reason, from_micros(until) if until is not None else None)


def _audit_of(row: Any, changes: tuple[SpecChange, ...]) -> AuditRecord:
    seq, rev, at, sha, author, email, authored, subject = row
    return AuditRecord(seq, rev, from_micros(at),
                       Commit(sha, author, email, from_micros(authored), subject) if sha else None, changes)


def _activity_of(row: Any) -> Activity:
    i, at, who, action, targets, reason, details = row
    return Activity(i, from_micros(at), who, Action(action), tuple(json.loads(targets)), reason, json.loads(details))
