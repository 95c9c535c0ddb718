"""Leases: this process as one replica among those sharing a ledger, and the reaper of runs whose
owner is gone. No owner's PID is ever checked for liveness: a lease works alike on one host and on several.

- **Register and heartbeat.** A process that claims runs (`reconciler run`, and `reconciler
  trigger` while its run lasts) registers as a replica (id, host, pid, version, revision) and
  heartbeats every `heartbeat`. Each heartbeat renews, on the database's clock, the replica's
  lease and that of every run it owns, to now + `lease`.
- **Reap.** Every replica, every `heartbeat`, looks for runs whose lease has expired. It stops
  what such a run left running on this host (as a timeout would), then ends it `abandoned`; it is
  never run again. Of replicas reaping at once, the database lets one record each run.
- **Stop when asked.** Every STOP_POLL (or heartbeat, if shorter), a replica that holds runs reads
  the stop requests other replicas left on them (`concurrency: replace` whose new run another replica claimed),
  and stops those runs (they end `cancelled`).
- **Fence.** A replica that cannot renew a run's lease stops the run's processes, so that a slow
  or partitioned replica never keeps running work that the others think dead. It does so when
  the ledger answers that the lease is lost (its registration or the run's lease is gone), and
  when no renewal has succeeded for `lease - heartbeat` since the last good one was sent (the
  ledger is unreachable or full): a heartbeat before any reaper can see the lease expired, so
  that the processes are gone by then (SIGTERM, then SIGKILL within half a heartbeat).

The defaults, 5 s and 20 s:
- A heartbeat is one small transaction per replica, nothing next to a claim per slot; 5 s keeps
  failover (a dead replica's runs abandoned within lease + heartbeat, 25 s) well inside the
  default `starting_deadline` (1 min), so a retry waiting on a dead replica's `forbid` run still
  starts in time.
- A lease of four heartbeats lets three in a row fail (a PostgreSQL failover, a stalled disk, a
  long pause) before a live replica gives its runs up, and fencing still has a whole heartbeat
  to stop them.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler import __version__
from reconciler.core.describe import utc_text
from reconciler.core.durations import format_duration
from reconciler.engine.health import LedgerHealth
from reconciler.kinds.base import KILL_GRACE
from reconciler.kinds.procs import Whereabouts, discard, leftovers, stop_leftovers
from reconciler.ledger.base import DEFAULT_LEASE, Ledger, LedgerError, LedgerFull

Clock = Callable[[], datetime]
Log = Callable[..., None]
Fence = Callable[[Collection[int], str], None]
StopRequested = Callable[[dict[int, str]], None]

HEARTBEAT = timedelta(seconds=5)
LEASE = DEFAULT_LEASE
ABANDONED = "the reconciler running it stopped renewing its lease"
# How often a replica holding runs reads stop requests: one indexed read, only while it holds runs.
STOP_POLL = 1.0


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    heartbeat: timedelta = HEARTBEAT
    lease: timedelta = LEASE

    def __post_init__(self) -> None:
        if self.heartbeat <= timedelta(0):
            raise ValueError("the heartbeat must be longer than 0")
        if self.lease < 2 * self.heartbeat:
            # Otherwise one late heartbeat would fence every run.
            raise ValueError(f"the lease ({format_duration(self.lease)}) must be at least twice the heartbeat "
                             f"({format_duration(self.heartbeat)})")

    @property
    def fence_after(self) -> float:
        """Seconds after the last good renewal was sent at which a run is stopped if none has
        succeeded since: one heartbeat before its lease can have expired."""
        return (self.lease - self.heartbeat).total_seconds()

    @property
    def kill_after(self) -> float:
        """Seconds from SIGTERM to SIGKILL for a fenced run: done within the heartbeat it has left."""
        return min(KILL_GRACE, self.heartbeat.total_seconds() / 2)


def replica_id() -> str:
    """Host and pid for people; the random part because pids repeat (every container's is 1)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Replica:
    """This process in the ledger: registered, heartbeating, fencing its runs, reaping others'.

    The runner tells it which runs it holds (`hold` after a claim, `release` before the finish)
    and gives `fence`, which stops the runs it is given. Three threads, so that none delays
    another: the heartbeat (which may wait on an unreachable database), the watchdog (which
    fences on time even then) and the reaper (which may wait for leftovers to stop).
    """

    def __init__(self, ledger: Ledger, *, log: Log, clock: Clock, times: LeaseTimes | None = None,
                 fence: Fence | None = None, grace: float = KILL_GRACE,
                 monotonic: Callable[[], float] = time.monotonic, health: LedgerHealth | None = None,
                 stop_requested: StopRequested | None = None) -> None:
        self.id = replica_id()
        self.times = times or LeaseTimes()
        self.fence: Fence | None = fence
        self.health = health or LedgerHealth()
        self.stop_requested = stop_requested
        self._ledger, self._log, self._clock, self._grace, self._monotonic = ledger, log, clock, grace, monotonic
        self._held: dict[int, float] = {}  # run id -> monotonic time at which it is fenced unless renewed
        self._lock = threading.Lock()
        self._reaping = threading.Lock()
        self._revision: str | None = None
        self._failing: str | None = None  # why heartbeats fail, while they do
        self._stop = threading.Event()
        self._wake = threading.Event()  # a heartbeat now: stopping, or a new revision to show
        self._threads: list[threading.Thread] = []

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, *, threads: bool = True) -> None:
        """Register (a ledger that cannot be reached fails the start), reap what expired while
        no one was looking, then heartbeat, watch and reap in the background."""
        self._register()
        self._log("replica.registered", replica=self.id, heartbeat=format_duration(self.times.heartbeat),
                  lease=format_duration(self.times.lease))
        self.reap()
        if not threads:
            return
        beat = self.times.heartbeat.total_seconds()
        asked = min(beat, STOP_POLL)
        loops = (("heartbeat", self.beat, lambda: beat, self._wake),
                 ("watchdog", self.watch, self._until_next_fence, self._stop),
                 ("reaper", self._reap_quietly, lambda: beat, self._stop),
                 ("stops", self.check_stop_requests, lambda: asked, self._stop))
        for name, step, pause, wake in loops:
            t = threading.Thread(target=self._every, args=(step, pause, wake), name=f"replica-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop the threads and deregister (after the runs have ended: see Runner.shutdown)."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=self.times.heartbeat.total_seconds() + 1)
        try:
            self._ledger.deregister_replica(self.id)
        except Exception as e:  # its lease then expires on its own
            self._log("replica.deregister_failed", replica=self.id, error=_text(e))

    def set_revision(self, revision: str) -> None:
        """The revision this replica runs, shown with its next heartbeat, which comes at once."""
        changed = (revision or None) != self._revision
        self._revision = revision or None
        if changed:
            self._wake.set()

    def _register(self) -> None:
        self._ledger.register_replica(self.id, host=socket.gethostname(), pid=os.getpid(), version=__version__,
                                      revision=self._revision, lease=self.times.lease)

    def _every(self, step: Callable[[], None], pause: Callable[[], float], wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception as e:  # a bug, or a failed re-registration: the loop goes on
                self._log("replica.error", replica=self.id, error=_text(e))
            wake.wait(pause())
            if wake is not self._stop:
                wake.clear()

    def _until_next_fence(self) -> float:
        with self._lock:
            soonest = min(self._held.values(), default=None)
        tick = self.times.heartbeat.total_seconds() / 10  # fencing is late by at most this
        return tick if soonest is None else max(0.0, min(tick, soonest - self._monotonic()))

    # ---- the runs this replica holds ----------------------------------------------------------

    def now(self) -> float:
        """Take this before a claim and give it to `hold`: the lease runs from about then."""
        return self._monotonic()

    def hold(self, run_id: int, sent: float) -> None:
        with self._lock:
            self._held[run_id] = sent + self.times.fence_after

    def release(self, run_id: int) -> None:
        """The run is over (call this before its end is written): never fence it."""
        with self._lock:
            self._held.pop(run_id, None)

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    # ---- heartbeat, watchdog -------------------------------------------------------------------

    def beat(self) -> None:
        """One heartbeat: renew the leases, and fence the runs the ledger no longer holds for us."""
        sent = self._monotonic()
        with self._lock:
            # Only these are judged by this heartbeat: a run claimed while it is in flight may
            # commit after its statement read the runs, and is renewed by the next one.
            judged = set(self._held)
        try:
            renewed = self._ledger.heartbeat(self.id, lease=self.times.lease, revision=self._revision)
        except Exception as e:  # unreachable, full, ...: the watchdog fences if it lasts
            why = _text(e)
            if isinstance(e, LedgerError) and not isinstance(e, LedgerFull):
                self.health.failed(why)
            if self._failing is None:
                self._log("replica.heartbeat_failed", replica=self.id, error=why,
                          effect=f"runs are stopped if this lasts {self.times.fence_after:g}s")
            self._failing = why
            return
        self.health.ok()
        if self._failing is not None:
            self._failing = None
            self._log("replica.heartbeat_recovered", replica=self.id)
        with self._lock:
            if renewed is None:
                lost = set(self._held)
            else:
                lost = (judged & self._held.keys()) - renewed
                for run_id in renewed & self._held.keys():
                    self._held[run_id] = sent + self.times.fence_after
            for run_id in lost:
                del self._held[run_id]
        if renewed is None:
            why = "this reconciler's registration was gone from the ledger"
            self._log("replica.lost", replica=self.id, reason=why, runs=sorted(lost))
            self._fence(lost, why)
            self._register()
            self._log("replica.registered", replica=self.id, heartbeat=format_duration(self.times.heartbeat),
                      lease=format_duration(self.times.lease))
        elif lost:
            self._fence(lost, "the ledger no longer held the run's lease")

    def check_stop_requests(self) -> None:
        """Stop the runs held here that another replica asked to stop (`replace`)."""
        held = self.held()
        if not held or self.stop_requested is None:
            return
        try:
            asked = self._ledger.stop_requests(self.id)
        except LedgerError:  # the next heartbeat asks again
            return
        mine = {run_id: why for run_id, why in asked.items() if run_id in held}
        if mine:
            self._log("replica.stop_requested", replica=self.id, runs=sorted(mine))
            self.stop_requested(mine)

    def watch(self) -> None:
        """Fence every run whose lease could not be renewed in time."""
        now = self._monotonic()
        with self._lock:
            late = [run_id for run_id, until in self._held.items() if now >= until]
            for run_id in late:
                del self._held[run_id]
        if late:
            self._fence(late, f"its lease could not be renewed for {self.times.fence_after:g}s "
                              f"({self._failing or 'no answer from the ledger'})")

    def _fence(self, run_ids: Collection[int], why: str) -> None:
        if not run_ids:
            return
        self._log("replica.fenced", replica=self.id, runs=sorted(run_ids), reason=why)
        if self.fence is not None:
            self.fence(run_ids, f"this reconciler stopped the run: {why}")

    # ---- reaper ----------------------------------------------------------------------------------

    def _reap_quietly(self) -> None:
        try:
            self.reap()
        except Exception as e:  # the ledger is unreachable: the heartbeat says so already
            if self._failing is None:
                self._log("replica.reap_failed", replica=self.id, error=_text(e))

    def reap(self) -> int:
        """End `abandoned` every run whose lease has expired, whoever owned it; how many this call
        ended. What such a run left running on this host is stopped first, so that nothing of it
        overlaps what runs next. One reap at a time in this process."""
        with self._reaping:
            return reap(self._ledger, self._clock, self._log, grace=self._grace)


def _text(e: Exception) -> str:
    """A ledger's message names the ledger already (and never its password)."""
    return str(e) if isinstance(e, LedgerError) else f"{type(e).__name__}: {e}"


def reap(ledger: Ledger, clock: Clock, log: Log, *, grace: float = KILL_GRACE) -> int:
    expired = ledger.expired_runs()
    if not expired:
        return 0
    found: dict[int, tuple[Whereabouts, list[tuple[int, str]]]] = {}
    for run in expired:
        where = Whereabouts.loads(run.processes)
        if where is None:
            continue
        pids = leftovers(where, f"RECONCILER_RUN_ID={run.record.id}")
        if pids:
            found[run.record.id] = (where, pids)
        else:
            discard(where)
    stopped = stop_leftovers(found, grace) if found else {}
    ended = 0
    for run in expired:
        r = run.record
        error = ABANDONED + (f"; {stopped[r.id]}" if r.id in stopped else "")
        if ledger.abandon(r.id, clock(), error):
            ended += 1
            log("run.abandoned", schedule=r.schedule, slot=utc_text(r.slot), run_id=r.id, revision=r.revision,
                owner=run.owner, error=error)
    return ended
