"""The ledger's contract (`Ledger`) and the values it exchanges. Written the way APScheduler 4
documents its data stores: each method says what it promises and what a backend must guarantee.
One contract-test suite (tests/test_ledger_contract.py) runs against every backend."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from reconciler.core.policy import Cause, Pause, RunStatus

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long a run's lease lasts unless its owner renews it: see reconciler/engine/leases.py.
DEFAULT_LEASE = timedelta(seconds=20)


def to_micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class LedgerError(Exception):
    """The ledger cannot be opened or used; the message names it and says why."""


class NoSuchLedger(LedgerError):
    """`open_ledger(..., create=False)` found no ledger at that path (a mistyped --ledger)."""


class RevisionSuperseded(Exception):
    """A claim refused because a newer revision, applied by another replica, removed or changed
    the schedule (`claim` with `spec_hash`): this caller runs a stale revision. Nothing was
    written, so the replica on the newer revision can still claim the slot."""

    def __init__(self, schedule: str, newest: str) -> None:
        super().__init__(f"{schedule}: a newer revision ({newest}) removed or changed this schedule")
        self.schedule, self.newest = schedule, newest


class PoolFull(Exception):
    """A claim refused because its pool (`claim` with `pool_size`) already had `size` runs
    `running`, counted across every replica in the claim's transaction. Nothing was written: the
    slot stays free, and the runner queues it (core/policy.py `pool_wait`)."""

    def __init__(self, pool: str, size: int, running: int) -> None:
        super().__init__(f"pool {pool!r} is full: {running} of {size} runs running")
        self.pool, self.size, self.running = pool, size, running


class LedgerFull(LedgerError):
    """A write failed because the volume (or the database's size limit) is full. Transient: the
    same write may succeed once space is freed. The backend reports the change of state once
    through `on_write_state`, so callers need not log each failed write."""


# Retention of revisions (see `Ledger.prune_revisions`): the newest this many are kept, and every
# revision a run still in the ledger was claimed under; a daemon prunes every PRUNE_EVERY records.
REVISIONS_KEEP = 100
PRUNE_EVERY = 50


def pack(changes: Mapping[str, str | None]) -> bytes:
    """A revision's stored form: name -> spec hash (None: removed), as compressed JSON. A base
    revision holds every name; a revision with a parent holds only what differs from it."""
    return zlib.compress(json.dumps(dict(changes), separators=(",", ":")).encode(), 1)


def replay(chain: Iterable[bytes]) -> dict[str, str]:
    """A revision's whole name -> hash map from its chain, base first (each later entry a change)."""
    out: dict[str, str] = {}
    for blob in chain:
        for name, h in json.loads(zlib.decompress(blob)).items():
            if h is None:
                out.pop(name, None)
            else:
                out[name] = h
    return out


def changes_between(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str | None]:
    """What turns `old` into `new`: changed or added names with their hash, removed ones as None."""
    out: dict[str, str | None] = {n: h for n, h in new.items() if old.get(n) != h}
    out.update((n, None) for n in old if n not in new)
    return out


@dataclass(frozen=True, slots=True)
class AppliedRevision:
    seq: int
    revision: str
    applied_at: datetime
    counts: dict[str, int]
    hashes: dict[str, str]  # name -> spec hash

    def specs(self, ledger: Ledger) -> dict[str, dict[str, Any]]:
        return ledger.specs(self.hashes)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    schedule: str
    slot: datetime
    attempt: int
    cause: Cause  # stored in the `trigger` column
    status: RunStatus
    revision: str
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    http_status: int | None
    error: str | None
    output: str | None = None
    output_dropped: int = 0
    owner: str = ""  # the replica that claimed it ("" for a run that never started)
    # What the run used, where its kind measured it (commands): bytes, and CPU seconds.
    peak_memory: int | None = None
    cpu_user: float | None = None
    cpu_system: float | None = None

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: RunStatus
    finished_at: datetime
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    output: str | None = None
    output_dropped: int = 0
    peak_memory: int | None = None  # bytes; with the two below, kept by `finish` (never by `record`)
    cpu_user: float | None = None  # seconds
    cpu_system: float | None = None


@dataclass(frozen=True, slots=True)
class ExpiredRun:
    """A run still marked running whose lease has expired: what a reaper needs to end it."""

    record: RunRecord
    owner: str  # the replica that claimed it
    processes: str | None  # where its processes live (what the engine gave `set_processes`)


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """A process that claims runs, as the ledger knows it. Times are the database's."""

    id: str
    host: str
    pid: int
    version: str
    revision: str | None  # the revision it runs, as of its last heartbeat
    started: datetime
    heartbeat: datetime
    lease_until: datetime  # alive until then, unless it heartbeats again
    stopped: datetime | None  # when it deregistered (a clean stop)
    alive: bool  # not stopped, and lease_until not yet passed on the database's clock
    runs: int  # runs it owns that are still running
    heartbeat_age: timedelta | None = None  # the database's now minus `heartbeat` (no clock skew)

    @property
    def state(self) -> str:
        """alive: heartbeating; stopped: deregistered at a clean stop; expired: it stopped
        heartbeating (killed, or cut off from the ledger), so its runs are abandoned as their
        leases expire."""
        return "alive" if self.alive else "stopped" if self.stopped is not None else "expired"


@dataclass(frozen=True, slots=True)
class StoredSpec:
    """A spec as stored, under its hash (the JSON text as written, so that the hash stays true)."""

    hash: str
    spec: str


@dataclass(frozen=True, slots=True)
class StoredRevision:
    """A revision as stored: with a `parent`, `hashes` holds only its changes (None: removed)."""
    seq: int
    revision: str
    applied_at: datetime
    counts: dict[str, int]
    hashes: dict[str, str | None]
    parent: int | None = None
    replica: str | None = None  # who applied it


@dataclass(frozen=True, slots=True)
class StoredCounter:
    schedule: str
    started: int


@dataclass(frozen=True, slots=True)
class StoredRun:
    """Every column of a run, for a copy between ledgers (`RunRecord` is what readers see)."""

    record: RunRecord  # with its output
    exclusive: bool
    processes: str | None
    lease_until: datetime | None  # the database's clock; only a `running` run has one that matters
    pool: str | None = None


@dataclass(frozen=True, slots=True)
class StoredPause:
    pause: Pause


@dataclass(frozen=True, slots=True)
class StoredAudit:
    record: AuditRecord


@dataclass(frozen=True, slots=True)
class StoredActivity:
    activity: Activity


Stored = (StoredSpec | StoredRevision | StoredCounter | StoredRun | StoredPause | StoredAudit | StoredActivity)


@dataclass(frozen=True, slots=True)
class Copied:
    """How many of each were loaded by `Ledger.load`."""

    specs: int = 0
    revisions: int = 0
    counters: int = 0
    runs: int = 0
    pauses: int = 0
    audits: int = 0
    actions: int = 0


@dataclass(frozen=True, slots=True)
class Health:
    """A schedule's recent record, for alerting (`Ledger.health`)."""

    last_success: datetime | None  # when its newest `succeeded` run finished
    failures: int  # runs ended in a failing status after that one (all of them, if none succeeded)


@dataclass(frozen=True, slots=True)
class Commit:
    """The git commit a revision was, as git's objects tell it."""

    sha: str
    author: str
    email: str
    authored_at: datetime
    subject: str


@dataclass(frozen=True, slots=True)
class SpecChange:
    """What one revision did to one schedule: `add`, `change` (with the field diff) or `remove`."""

    schedule: str
    action: str
    fields: tuple[dict[str, Any], ...] = ()  # {"path", "old", "new"}: JSON values, None when absent


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An applied revision in the audit trail: who committed it, and what it changed."""

    seq: int  # the revision's sequence number (`record_revision`)
    revision: str
    applied_at: datetime
    commit: Commit | None  # None when the revision is no commit (a dirty work tree, no git)
    changes: tuple[SpecChange, ...]


class Action(StrEnum):
    """An operator's action, as the activity list records it."""

    TRIGGER = "trigger"
    PAUSE = "pause"
    RESUME = "resume"
    BACKFILL = "backfill"
    BULK_PAUSE = "bulk_pause"
    BULK_RESUME = "bulk_resume"


@dataclass(frozen=True, slots=True)
class Activity:
    """One operator action: who (a token's name, or the OS user of a command), when (the ledger's
    clock, UTC), what (`action` on `targets`, schedule names) and why (`reason`); `details` holds
    the action's own facts as a JSON object (a pause's `until`, a backfill's range)."""

    id: int
    at: datetime
    who: str
    action: Action
    targets: tuple[str, ...]
    reason: str
    details: dict[str, Any]


class Ledger(Protocol):
    """The truth of what happened: applied revisions, every claimed slot and its run, and the
    replicas that claim them. Every backend implements all of it and passes the same suite
    (tests/test_ledger_contract.py); nothing above this layer knows which backend it has.

    Rules every method keeps:

    - **Atomicity**: each method is one transaction; a failure leaves nothing half written.
    - **Any number of processes and hosts**: every promise below holds when several processes
      call at once, on this host or others. The database decides (a unique key, a partial
      unique index, a conditional update), never a check in the caller followed by a write.
    - **Two clocks**: instants passed in (`slot`, `started_at`, `finished_at`, `applied_at`) are
      the caller's and are stored as given (aware, read back in UTC). Leases and heartbeats are
      on the **database's** clock alone (SQLite: the clock of the host that holds the file;
      PostgreSQL: the server's `now()`), so that replicas whose clocks disagree still agree on
      whether a lease has expired. A lease is given as a duration, never as an instant.
    - **Errors**: `LedgerError` when the ledger cannot be used (unreachable, not a ledger,
      a newer schema); `LedgerFull` when a write failed for lack of space.
    - **Run states**: a run is inserted `running` (`claim`) or already ended (`record`); it leaves
      `running` once, by `finish` or `abandon`, and never returns to it. The first end stands.
    - **Ordering**: run ids and revision sequence numbers grow with each insert; lists are
      ordered by them (across processes, that is the order of inserts, not of commits).
    - **Idempotence**: `finish`, `abandon`, `set_processes`, `heartbeat` and the registrations may
      be repeated and change nothing more. `claim` and `record` may not: a second claim of a slot
      returns None, so a caller that lost the answer must not claim again. The run, if it was
      inserted, then expires with its lease and is abandoned, never run twice.

    Every ledger is opened by `reconciler.ledger.open_ledger(path_or_url)`. Each method below is
    used outside the tests; the comment after each says by what.
    """

    on_write_state: Callable[[str | None], None] | None
    """Told once when writes start failing for lack of space (a message) and once when they work
    again (None), not on every write. Called in the writing thread; must not use the ledger."""

    def close(self) -> None:
        """Release connections. Nothing is lost: every method has committed before it returned.
        (Every command that opens a ledger.)"""
        ...

    # ---- revisions ---------------------------------------------------------------------------

    def record_revision(self, revision: str, applied_at: datetime, counts: Mapping[str, int],
                        specs: Mapping[str, dict[str, Any]], hashes: Mapping[str, str], *,
                        parent: int | None = None, changes: Mapping[str, str | None] | None = None,
                        replica: str | None = None) -> int:
        """Record that `revision` became live, as its schedules' spec hashes; its sequence number.
        `replica`: the replica that applied it (kept with the revision, for the audit trail).

        Specs are content-addressed: `specs` needs to hold only those that may be new (a plan's
        additions and changes), and every hash in `hashes` must be stored already or be among
        them. Revisions are ordered by insertion (the sequence), not by `applied_at`. (The daemon,
        after each applied revision.)

        With `parent` (a sequence number this ledger returned) and `changes` (what turns that
        revision's hashes into `hashes`: name -> new hash, None for a removed name), only the
        changes are stored, so a one-file change costs bytes in the size of that file. `hashes`
        is then not read unless the parent is gone (pruned), when the whole map is stored instead.
        """
        ...

    def revision(self, seq: int) -> AppliedRevision | None:
        """The revision recorded as `seq`, whole (rebuilt from its base and changes); None if
        there is none, or it was pruned."""
        ...

    def revisions(self, limit: int = 50) -> list[tuple[int, str, datetime, dict[str, int]]]:
        """The newest recorded revisions, newest first: seq, revision, applied_at, counts (the
        audit trail, without rebuilding any)."""
        ...

    def prune_revisions(self, keep: int = REVISIONS_KEEP) -> int:
        """The retention rule; the number of revisions removed. Kept: the newest `keep`, every
        revision that a run in the ledger was claimed under (by revision id: runs themselves are
        pruned by each schedule's `history.keep`), and every revision after the oldest of those,
        so each kept revision's chain of changes is whole. The oldest kept revision whose parent
        is removed is rewritten as a base (its whole map) first, in the same transaction; specs
        no kept revision refers to are removed. (The daemon, every PRUNE_EVERY records.)"""
        ...

    def last_revision(self) -> AppliedRevision | None:
        """The revision recorded last, or None in a new ledger (what `plan --ledger` compares
        with, what a daemon restores when its directory cannot be applied, what `trigger` runs
        as, and the names `history` knows)."""
        ...

    def specs(self, hashes: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """name -> spec for every hash in `hashes` that is stored (a missing one is left out).
        (`plan --ledger`, and a daemon restoring the last revision.)"""
        ...

    def advance_revision(self, revision: str, hashes: Mapping[str, str], *, replica: str,
                         previous: str | None = None,
                         changes: Mapping[str, str | None] | None = None) -> str | None:
        """Tell the ledger that `replica` applied `revision` (its schedules' spec hashes, before
        any --selector); None if that revision is now the newest, else the newest revision's id:
        the caller runs a stale revision, and its claims of schedules that the newest one removed
        or changed are refused (`claim`'s `spec_hash`).

        Newer means first seen later: a revision the ledger has never seen becomes the newest, as
        does one that `replica` moved to from the newest (`previous`, a revert: content ids repeat).
        A revision seen before that is not the newest changes nothing (a stale replica that
        restarts never resurrects what was removed). When a revision becomes the newest, every
        schedule's head (its hash, or "removed") becomes that revision's, in one transaction;
        concurrent calls are serialised. (The daemon, after each revision it applies.)

        `changes` (name -> hash, None: removed) are how `hashes` differ from `previous`'s. When
        `previous` is the newest revision, the heads hold its hashes already, so only these heads
        are written (a one-file change costs O(that file), not a row per schedule); a head keeps
        the revision that last wrote it, which refuses exactly the claims a whole write would.
        Otherwise (another replica advanced meanwhile, or none before) `changes` are not trusted
        and every head is written from `hashes`.
        """
        ...

    def revision_heads(self) -> dict[str, tuple[str | None, str]]:
        """Every schedule the newest revisions named: name -> (spec hash, or None once removed;
        the revision that set it). (`reconciler status`, tests.)"""
        ...

    # ---- runs ----------------------------------------------------------------------------------

    def claim(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
              started_at: datetime, owner: str = "", counted: bool = False, max_runs: int | None = None,
              exclusive: bool = False, lease: timedelta = DEFAULT_LEASE,
              spec_hash: str | None = None, pool: str | None = None, pool_size: int | None = None) -> int | None:
        """Start a run: its id, or None when this caller must not run it. The only way a run starts.

        Implementers must guarantee, in one atomic step:

        - **one winner per slot**: an insert under UNIQUE (schedule, slot, attempt); of any number
          of concurrent claims of one slot and attempt, exactly one gets an id, the others None
          (not an error), and a slot once claimed is never claimed again, whatever its outcome;
        - **max_runs**: a `counted` claim adds one to the schedule's `started_count` in the same
          transaction; with `max_runs`, a counted claim returns None once that count has reached
          it (the check and the count cannot interleave). Which claims count is the policy's
          (core/policy.py: `counted`), never the backend's;
        - **forbid**: with `exclusive`, None while any other run of the schedule is `running`, and
          never two exclusive runs of a schedule `running` at once (a partial unique index);
        - **the lease**: the run is `running`, owned by `owner` (a replica id), with
          `lease_until` = the database's now + `lease`. Until its owner renews it (`heartbeat`),
          it expires then;
        - **stale revisions**: with `spec_hash`, raise RevisionSuperseded (and write nothing) when
          the schedule's head (`advance_revision`) has another hash (or none: removed) and was set
          by a revision newer than `revision`. A revision the ledger has not seen yet is the
          newest (its replica is about to advance it), so it is never refused;
        - **pools** (issue 18): the run row stores `pool`. With `pool_size`, in the same
          transaction as the insert, count the `running` runs of that pool (every schedule, every
          owner) and raise PoolFull (writing nothing) when they are `pool_size` or more, so that
          of any number of concurrent claims, from any number of processes, never more than
          `pool_size` runs of a pool are running. The count and the insert cannot interleave with
          another claim of the pool: SQLite's write transaction serialises them; PostgreSQL takes
          `pg_advisory_xact_lock` on the pool's name first. A slot already claimed returns None
          (taken), not PoolFull, even when the pool is full.
        """
        ...

    def request_stop(self, schedule: str, *, owner: str, reason: str) -> list[tuple[int, str]]:
        """Ask the owners of the schedule's running runs, other than `owner`'s own, to stop them
        (`replace`): marks each with `reason` (the first request stands); (run id, owner) of each
        marked now. (The runner, after a `replace` claim.)"""
        ...

    def stop_requests(self, replica: str) -> dict[int, str]:
        """Run id -> reason, for the running runs of `replica` that another replica asked it to
        stop. (The replica's heartbeat: the owner stops them and records them `cancelled`.)"""
        ...

    def pool_running(self) -> dict[str, int]:
        """The `running` runs of each pool that has any, across every replica (metrics, the API)."""
        ...

    def started_count(self, schedule: str) -> int:
        """How many claims have counted towards the schedule's `max_runs`; retention never lowers it.
        (The runner, to tell "max_runs reached" from "claimed elsewhere".)"""
        ...

    def finish(self, run_id: int, outcome: Outcome, *, keep: int | None = None) -> bool:
        """End a running run with its outcome; with `keep`, prune the schedule's history to the
        `keep` newest ended runs in the same transaction (running runs are never pruned).

        Only a `running` run is ended: if it ended already (a reaper `abandon`ed it while its owner
        could not renew the lease), the first end stands and this returns False. A write that
        fails for lack of space, or because a server did not answer (a restart or failover of
        PostgreSQL), is not an error: the end is kept in memory and written before the next write
        that succeeds, so a run never stays `running` (nor holds a `forbid` schedule) because the
        disk was full or the server away when it ended; this then returns True.
        """
        ...

    def record(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
               outcome: Outcome, started_at: datetime | None = None) -> int | None:
        """A run that never started (skipped, missed, a catch-up summary): inserted ended, under
        the same UNIQUE (schedule, slot, attempt) as a claim; None if that key is taken. It holds
        no lease and counts towards nothing. (The runner's skips and misses; catch-up.)"""
        ...

    def set_processes(self, run_id: int, processes: str) -> None:
        """Keep where a running run's processes live (opaque text from the engine), so that a
        reaper on the same host can stop what the run left if its owner dies."""
        ...

    # ---- reading runs --------------------------------------------------------------------------

    def run(self, run_id: int) -> RunRecord | None:
        """One run with its output, or None. (The API, `history --run`, `trigger`.)"""
        ...

    def runs(self, schedule: str | None = None, *, status: RunStatus | None = None, since: datetime | None = None,
             limit: int = 50, before_id: int | None = None) -> list[RunRecord]:
        """Runs newest first (by id), without output; `since` compares slots as instants;
        `before_id` pages. (The API and dashboard, `history`, `plan`'s "it ran recently".)"""
        ...

    def last_slots(self, causes: Collection[Cause]) -> dict[str, datetime]:
        """The newest slot of every schedule among runs of these causes (policy.TIMELINE: what
        catch-up starts after), in one query (catch-up at start-up)."""
        ...

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest run of every schedule, in one query (the dashboard's 'last run', the
        notifier's memory at start-up, the names `history` knows)."""
        ...

    def run_counts(self) -> dict[RunStatus, int]:
        """How many runs the ledger holds in each state (states with none are left out), in one
        query. (`reconciler status`, GET /api/v1/summary.)"""
        ...

    def recent_runs(self, schedules: Collection[str], per: int) -> dict[str, list[RunRecord]]:
        """The newest `per` runs (by id, newest first, without output) of each of these schedules,
        in one query that reads at most `per` rows of each: the dashboard's run strips. A schedule
        without runs is left out."""
        ...

    def status_counts(self, schedule: str, since: datetime) -> dict[RunStatus, int]:
        """How many runs of one schedule whose slot is at or after `since` ended in each state
        (states with none are left out), in one query: the dashboard's success rates."""
        ...

    def open_runs(self, schedule: str | None = None) -> list[tuple[RunRecord, str]]:
        """Runs still `running` (of one schedule, or all), oldest first, each with its owner: what
        holds a `forbid` schedule, whether its lease has expired or not. (The runner, when an
        exclusive claim fails: is it this very slot, and did its holder end meanwhile?)"""
        ...

    def last_attempts(self, statuses: Collection[RunStatus], schedules: Collection[str]) -> list[RunRecord]:
        """Of these schedules, every slot whose newest attempt ended in one of `statuses`: that
        attempt, oldest first (the retries a stopped reconciler still owed, at start-up)."""
        ...

    # ---- replicas and leases (engine/leases.py; `replicas` for the API) ----------------------------

    def register_replica(self, replica: str, *, host: str, pid: int, version: str, revision: str | None,
                         lease: timedelta) -> None:
        """Record a process that will claim runs: started and heartbeat = the database's now, alive
        for `lease`. Registering an id again starts it afresh (a replica whose row was reaped).
        Replicas that stopped or expired more than a day ago, owning no running run, are deleted
        here, so the table stays as small as the replicas of a day."""
        ...

    def heartbeat(self, replica: str, *, lease: timedelta, revision: str | None = None) -> set[int] | None:
        """Renew, in one transaction, the replica's own lease and those of its runs; the ids of
        the runs renewed, or None if the replica is not registered (its row was deleted, or it
        deregistered): its caller must then treat every run it holds as lost.

        Only runs that are `running`, owned by `replica` and whose lease has not yet expired are
        renewed (to the database's now + `lease`). An expired lease is never renewed, even if no
        reaper has ended the run yet: from its expiry a run belongs to the reapers, so its owner
        must stop it (fencing) rather than race them. A run the caller holds that is missing from
        the answer is lost in the same way.
        """
        ...

    def deregister_replica(self, replica: str) -> None:
        """A clean stop: the replica is no longer alive (its row stays, `stopped`, for a day).
        Its runs should have ended first; any still running expire with their leases."""
        ...

    def replicas(self) -> list[ReplicaRecord]:
        """Every registered replica, alive or not, oldest first, with the runs it owns."""
        ...

    def expired_runs(self) -> list[ExpiredRun]:
        """Runs still `running` whose lease has expired on the database's clock, oldest first.
        Reading them changes nothing; `abandon` ends them."""
        ...

    def abandon(self, run_id: int, finished_at: datetime, error: str) -> bool:
        """End a run `abandoned` if it is still `running` and its lease has expired; True if this
        call ended it. Of reapers racing for one run, exactly one gets True. An abandoned run is
        never claimed or run again (its slot's key stays taken)."""
        ...

    # ---- copying a whole ledger (`reconciler ledger copy`) ----------------------------------------

    def dump(self) -> Iterator[Stored]:
        """Everything a ledger holds but its replicas, as one consistent snapshot: specs, then
        revisions (by seq), counters, then runs by id, each with every column, then pauses, the
        audit trail (by seq) and the activity list (by id). Revision heads are not copied: the
        first replica on the copy writes them whole. Runs are read in
        pages, so memory stays bounded whatever the history; the snapshot (a read transaction) is
        held until the iterator is exhausted or closed."""
        ...

    def load(self, items: Iterable[Stored]) -> Copied:
        """Write what `dump` gave (of this backend or another) into this ledger, which must be
        empty (no spec, revision, counter, run, pause, audit record or action; replicas do not
        count): otherwise LedgerError,
        and nothing is written. One transaction: a failure leaves the ledger empty. Run ids,
        revision sequence numbers and every instant are kept as they were, and the ids given
        after it continue after the largest copied. Output keeps every byte (NUL included);
        text columns of PostgreSQL cannot hold NUL, so an error message loses its NULs there."""

    # ---- health and the audit trail ----------------------------------------------------------

    def health(self, failing: Collection[RunStatus]) -> dict[str, Health]:
        """For every schedule with a `succeeded` run or a run in `failing` (policy.FAILING): when
        its newest success finished, and how many runs ended in `failing` after it. In two queries
        at most, whatever the number of schedules. (/metrics, at each scrape.)"""
        ...

    def record_audit(self, seq: int, revision: str, applied_at: datetime, commit: Commit | None,
                     changes: Collection[SpecChange]) -> None:
        """Keep who committed revision `seq` and what it changed, apart from the revision itself.
        Recording a `seq` again changes nothing (the first record stands). (The daemon, after
        `record_revision`.)"""
        ...

    def audit(self, schedule: str | None = None, *, since: datetime | None = None,
              limit: int = 100) -> list[AuditRecord]:
        """Recorded revisions, newest first (by seq), those applied at or after `since`. With
        `schedule`, only the revisions that changed it, each with that schedule's change alone.
        (`reconciler audit`, the API's change history.)"""
        ...

    # ---- pauses (`reconciler pause` and `resume`, the API; the runner through engine/pauses.py) ----

    def pause(self, pause: Pause) -> None:
        """Pause `pause.schedule`: who, when, why and until when (None: until resumed). A schedule
        has at most one pause: pausing it again replaces the pause (a new reason or expiry). Pauses
        whose `until` is before `pause.at` are deleted in the same transaction. The schedule need
        not exist: the ledger knows names, not revisions."""
        ...

    def resume(self, schedule: str) -> Pause | None:
        """Delete the schedule's pause; the pause deleted (expired or not), or None if it had none."""
        ...

    def pauses(self) -> dict[str, Pause]:
        """Every pause, by schedule, in one query, including those whose `until` has passed (whether
        a pause is active is the policy's: `pause_active`). The runner reads this at most once a
        second, so it must stay one cheap statement."""
        ...

    def slot_runs(self, schedule: str, start: datetime, end: datetime) -> dict[datetime, RunStatus]:
        """Every slot of the schedule in [start, end) that has a row (any cause), with the status of
        its newest attempt (`backfill`: which slots already ran)."""
        ...

    # ---- operators' activity (the API's actions and the commands'; /api/v1/activity) ----------------

    def record_activity(self, who: str, action: Action, targets: Sequence[str], reason: str = "",
                        details: Mapping[str, Any] | None = None) -> Activity:
        """Append one action, stamped with the ledger's clock (SQLite: the clock of the host that
        holds the file; PostgreSQL: the server's `now()`), and return it with its id. Ids grow with
        each record. Records are never changed nor pruned. (The HTTP API after each action, and
        `reconciler pause`, `resume`, `trigger`, `backfill`.)"""
        ...

    def activity(self, schedule: str | None = None, *, before_id: int | None = None,
                 limit: int = 50) -> list[Activity]:
        """Recorded actions, newest first (by id), those with an id below `before_id` (paging);
        with `schedule`, only those whose targets include it. (/api/v1/activity, `reconciler
        activity`.)"""
        ...
