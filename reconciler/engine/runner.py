"""The runner: claim a slot in the ledger, apply the schedule's policy, execute, record.

Slots arrive from the timer thread and are handed to a worker pool at once, so a slow job never
delays another schedule's fire. Only the process whose claim insert succeeds runs a slot.

The slots waiting for a worker are bounded (`max_waiting`, RECONCILER_MAX_WAITING): one that
arrives at a full backlog is recorded `missed` (overload) at once, one that waited past its
starting_deadline too, and one still waiting when the reconciler stops is recorded `missed`
(shutdown). No slot handed to the runner is ever left without a row.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core import policy
from reconciler.core.describe import utc_text
from reconciler.core.limits import Usage
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Defer, Miss, Queue, Request, RunStatus, Skip
from reconciler.engine.catchup import BEHIND, gap, make_up
from reconciler.engine.health import LedgerHealth
from reconciler.engine.leases import LeaseTimes, Replica
from reconciler.engine.pauses import Pauses
from reconciler.engine.pools import PoolQueue, Waiting
from reconciler.kinds import kind
from reconciler.kinds.base import KILL_GRACE, Attempt, Context, Handle
from reconciler.ledger.base import Ledger, LedgerError, LedgerFull, Outcome, PoolFull, RevisionSuperseded, RunRecord

Clock = Callable[[], datetime]
Log = Callable[..., None]
# At shutdown, seconds from SIGTERM to SIGKILL for a job still running when the grace ends: short,
# so that the reconciler exits within grace plus a few seconds (Kubernetes allows 5 above ours).
SHUTDOWN_KILL_AFTER = 2.0
# Slots waiting for a worker, at most (RECONCILER_MAX_WAITING overrides it): a burst of every
# schedule of a large fleet due at one minute still fits, and the memory it holds stays small.
MAX_WAITING = 20_000
# Threads that record what never runs (overload, shutdown): several, so that their writes share
# the ledger's commits.
RECORDERS = 4


def default_max_running(cpus: int | None) -> int:
    """Runs at once by default (--max-running): 32 per CPU. A run costs the reconciler one thread
    that mostly waits, and jobs are mostly I/O-bound or wait on other systems, so the bound is not
    the CPUs' work but what one host should start at once; it keeps 64 on two cores, as before."""
    return 32 * max(1, cpus or 1)

_TICK = timedelta(microseconds=1)
# A finish that failed (the ledger unreachable) is tried again after these pauses, then every last.
FINISH_RETRY_PAUSES = (0.1, 0.25, 0.5, 1.0, 2.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Blocked(Exception):
    """A backfill's claim was refused while another run holds a `forbid` schedule: ask again after `delay`."""

    def __init__(self, delay: timedelta) -> None:
        super().__init__(delay)
        self.delay = delay


class Runner:
    def __init__(self, ledger: Ledger, *, log: Log, clock: Clock = utcnow,
                 environ: Mapping[str, str] | None = None, max_workers: int | None = None,
                 leases: LeaseTimes | None = None, max_waiting: int | None = None) -> None:
        self._ledger, self._log, self._clock = ledger, log, clock
        self._environ = environ if environ is not None else os.environ
        # Whether the ledger answers (fail closed: no claim, no run), told by claims and heartbeats.
        self.health = LedgerHealth()
        # Who claims runs, and keeps their leases: see engine/leases.py.
        self.replica = Replica(ledger, log=log, clock=clock, times=leases, fence=self._fence, health=self.health,
                               stop_requested=self._stop_requested)
        self._live: Mapping[str, Schedule] = {}
        self._revision = ""
        self._active: dict[str, list[Active]] = defaultdict(list)
        self._owned: dict[int, Active] = {}  # by run id: what fencing stops
        self._lock = threading.Lock()
        # Runs at once (--max-running): a slot beyond them waits in the backlog (queued).
        self.max_running = max_workers or default_max_running(os.cpu_count())
        self._pool = ThreadPoolExecutor(max_workers=self.max_running, thread_name_prefix="run")
        self.max_waiting = max_waiting if max_waiting is not None else _max_waiting(self._environ)
        # (name, slot, request, when it came in, whether max_running was reached then), oldest
        # first: the backlog, drained by the pool.
        self._waiting: deque[tuple[str, datetime, Request, datetime, bool]] = deque()
        self._recorder = ThreadPoolExecutor(max_workers=RECORDERS, thread_name_prefix="miss")
        self._stop_all: tuple[str, float] | None = None  # set when the grace has ended
        # Slots between the accepting check and their row's last write: what the grace waits for.
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._timers: set[threading.Timer] = set()
        self._accepting = True
        self._downstream: Mapping[str, tuple[str, ...]] = {}  # upstream -> schedules `after` it
        self._followed: dict[tuple[str, datetime, int], datetime] = {}  # upstream runs whose downstreams were asked
        self._poll_floor = 0  # the poll reads runs from this id up
        self._polling = threading.Event()
        self.pauses = Pauses(ledger, clock=clock, log=log)  # the ledger's pauses, cached briefly
        # Every recorded outcome (runs, skips, misses) with its output: metrics, notifications.
        self.on_finished: Callable[[RunRecord, str], None] | None = None
        self.on_completed: Callable[[str], None] | None = None  # max_runs reached
        # A claim lost or refused, and why (policy.SkipReason): metrics.
        self.on_refused: Callable[[str, policy.SkipReason], None] | None = None
        self._superseded: dict[str, str] = {}  # schedule -> the newer revision last logged for it
        self.on_superseded: Callable[[str], None] | None = None  # a claim refused for this newer revision
        self._giving_up = threading.Event()  # shutdown: stop retrying finishes once the grace is over
        # Named pools (pools.yaml): their sizes, and the slots queued for room in them (engine/pools.py).
        self.pool_sizes: Mapping[str, int] = {}
        self.pool_queue = PoolQueue(self.max_waiting)

    # ---- wiring ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Register as a replica and reap runs whose lease expired, before anything is claimed."""
        self.replica.start()
        threading.Thread(target=self._poll_pools_loop, name="pools", daemon=True).start()

    def update(self, schedules: Mapping[str, Schedule], revision: str,
               followers: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """The schedules now live and their revision. Kept by reference: never mutate it afterwards.
        `followers` (upstream -> who runs `after` it, core.deps.followers) spares a walk over every
        schedule at each revision; without it the map is computed from `schedules`."""
        if followers is None:
            found: dict[str, list[str]] = {}
            for s in schedules.values():
                for up in s.deps.after:
                    found.setdefault(up, []).append(s.name)
            followers = {k: tuple(sorted(v)) for k, v in found.items()}
        with self._lock:
            self._live, self._revision = schedules, revision
            self._downstream = followers
        self.replica.set_revision(revision)

    def followers(self, upstream: str) -> tuple[str, ...]:
        """The live schedules that run `after` this one."""
        return self._downstream.get(upstream, ())

    def set_pools(self, sizes: Mapping[str, int]) -> None:
        """pools.yaml's sizes, live: a pool that grew starts its queued slots at once."""
        with self._lock:
            self.pool_sizes = dict(sizes)
        for pool in self.pool_queue.pools():
            self._offer(pool)

    def dispatch(self, name: str, slot: datetime, fire_time: datetime | None = None, *,
                 cause: Cause = Cause.SCHEDULE, attempt: int = 1) -> None:
        """Called on the timer thread: never blocks."""
        self._enqueue(name, slot, Request(cause, attempt, fire_time or slot))

    def _enqueue(self, name: str, slot: datetime, request: Request) -> None:
        miss: Miss | None = None
        with self._lock:
            if not self._accepting:
                miss = policy.shut_down(request)
            elif len(self._waiting) >= self.max_waiting:
                miss = policy.overflow(len(self._waiting), self.max_waiting)
            else:
                self._waiting.append((name, slot, request, self._clock(), self._in_flight >= self.max_running))
        if miss is not None:
            self._record_miss(name, slot, request, miss)
            return
        # RuntimeError: the pool stopped meanwhile; shutdown records what is left waiting.
        with contextlib.suppress(RuntimeError):
            self._pool.submit(self._next)

    def waiting(self) -> int:
        """Slots handed to the runner that wait for a worker (the backlog)."""
        return len(self._waiting)

    def _next(self) -> None:
        with self._lock:
            if not self._waiting:
                return
            name, slot, request, queued_at, full = self._waiting.popleft()
        self._guarded(name, slot, request, queued_at, full)

    def _record_miss(self, name: str, slot: datetime, request: Request, miss: Miss) -> None:
        """Record a slot that will not run, off the caller's thread (the timer's must not wait)."""
        with self._lock:
            revision = self._revision
        try:
            self._recorder.submit(self._skip_guarded, name, slot, request, revision, miss)
        except RuntimeError:  # the recorders have stopped: only after shutdown recorded the backlog
            self._log("run.unrecorded", schedule=name, slot=utc_text(slot), error=miss.message)

    def _skip_guarded(self, name: str, slot: datetime, request: Request, revision: str, miss: Miss) -> None:
        try:
            self._skip(name, slot, request, revision, RunStatus.MISSED, miss.message, miss.reason)
        except Exception as e:
            self._log("run.error", schedule=name, slot=utc_text(slot), error=f"{type(e).__name__}: {e}")

    def trigger_now(self, name: str) -> None:
        """A manual run, in the background (the daemon's API)."""
        if name not in self._live:
            raise KeyError(name)
        now = self._clock()
        self.dispatch(name, now, now, cause=Cause.MANUAL)

    def run_now(self, name: str) -> int | None:
        """A manual run in the calling thread (`reconciler trigger`); its run id."""
        if name not in self._live:
            raise KeyError(name)
        now = self._clock()
        return self._run(name, now, Request(Cause.MANUAL, 1, now))

    def backfill(self, name: str, slot: datetime, parallel: int = 1) -> int | None:
        """Run a past slot in the calling thread, as `backfill` under the slot's own key
        (`reconciler backfill`): its run id, or None if the slot was taken or the schedule is paused.
        While another run holds a `forbid` schedule, it waits."""
        if name not in self._live:
            raise KeyError(name)
        while True:
            try:
                return self._run(name, slot, Request(Cause.BACKFILL, 1, slot), parallel=parallel)
            except _Blocked as blocked:
                if not self._accepting:
                    return None
                threading.Event().wait(blocked.delay.total_seconds())

    def running(self, name: str | None = None) -> int:
        with self._lock:
            return sum(len(h) for n, h in self._active.items() if name is None or n == name)

    # ---- one slot -----------------------------------------------------------------------------------

    def _guarded(self, name: str, slot: datetime, request: Request, queued_at: datetime | None = None,
                 full: bool = False, pooled: Waiting | None = None) -> None:
        try:
            self._run(name, slot, request, queued_at, full, pooled=pooled)
        except LedgerFull:
            pass  # the slot cannot be claimed, so it does not run; the ledger reports that once
        except LedgerError as e:
            # Unreachable: fail closed (nothing runs unclaimed), said once by the health's observer.
            # A claim is never retried: it may have been written, and a second one would be refused.
            self.health.failed(str(e), slot=True)
            self._count(name, policy.SkipReason.UNREACHABLE)
        except Exception as e:  # a bug here must not kill the worker pool silently
            self._log("run.error", schedule=name, slot=utc_text(slot), error=f"{type(e).__name__}: {e}")

    def _run(self, name: str, slot: datetime, request: Request, queued_at: datetime | None = None,
             full: bool = False, parallel: int = 1, pooled: Waiting | None = None) -> int | None:
        """Decide, claim, run, record; the run's id (or the id of the row that says why it did not run)."""
        with self._lock:
            s, revision, accepting = self._live.get(name), self._revision, self._accepting
            if s is not None and accepting:
                self._in_flight += 1
        if s is None:
            return None  # removed between the fire and now
        if not accepting:
            stopped = policy.shut_down(request)
            if stopped is not None:
                self._skip(name, slot, request, revision, RunStatus.MISSED, stopped.message, stopped.reason)
            return None
        try:
            return self._started(s, name, slot, request, revision, queued_at, full, parallel, pooled)
        finally:
            with self._lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.notify_all()

    def _started(self, s: Schedule, name: str, slot: datetime, request: Request, revision: str,
                 queued_at: datetime | None, full: bool = False, parallel: int = 1,
                 pooled: Waiting | None = None) -> int | None:
        now = self._clock()
        pool = s.policy.pool
        size = self.pool_sizes.get(pool) if pool is not None else None
        if pooled is not None and size is not None:  # queued for room: its deadline is the pool's to judge
            waited = policy.pool_wait(s, request, now, since=pooled.since, size=size)
            if isinstance(waited, Miss):
                self._skip(name, slot, request, revision, RunStatus.MISSED, waited.message, waited.reason)
                return None
        pause = self.pauses.get(name)
        # Gate mode (issue 18): the slot waits for its requirements; a paused one is skipped as paused.
        if s.deps.requires and not policy.pause_active(pause, now):
            held = policy.gate(s, request, now, self._ended(policy.required_names(s)))
            if isinstance(held, Queue):  # asked again as it came (a retry would not be gated)
                self.retry(name, slot, request.attempt, held.delay, due=held.due, cause=request.cause)
                return None
            if held is not None:
                return self._refused(name, slot, request, revision, held)
        decision = policy.decide(s, request, now, slot, queued_at=queued_at,
                                 full=self.max_running if full else None, pause=pause, parallel=parallel)
        if isinstance(decision, Miss):
            self._skip(name, slot, request, revision, RunStatus.MISSED, decision.message, decision.reason)
            return None
        if isinstance(decision, Skip):  # paused, a window or a calendar
            return self._skip(name, slot, request, revision, RunStatus.SKIPPED, decision.message, decision.reason) \
                if decision.recorded else None
        if isinstance(decision, Defer):
            self._log("run.deferred", schedule=name, slot=utc_text(slot), until=utc_text(decision.at),
                      reason=decision.message, **_logged(request, revision))
            self.later(name, slot, decision.request, max(decision.at - now, timedelta(0)))
            return None
        if pool is not None and size is not None and pooled is None and request.cause != Cause.BACKFILL \
                and self.pool_queue.has(pool):
            # Slots of the pool wait already: this one takes its place among them, by priority.
            self._queue_for_pool(s, name, slot, request, revision, now, now, size)
            return None
        try:
            run_id, blocked = self._claim(name, slot, now, request, revision, decision, s.spec_hash,
                                          pool, size)
        except RevisionSuperseded as e:
            self._refused_stale(name, slot, revision, e.newest)
            return None
        except PoolFull:
            assert pool is not None
            assert size is not None
            if pooled is not None:
                self.pool_queue.done(pooled)  # the pool is full: the next offer waits for room
            since = pooled.since if pooled is not None else now
            if request.cause == Cause.BACKFILL:
                raise _Blocked(policy.POOL_POLL) from None
            self._queue_for_pool(s, name, slot, request, revision, now, since, size)
            return None
        if pooled is not None and self.pool_queue.done(pooled):
            self._offer(pooled.pool)  # there may be room for the next one too
        self.health.ok()
        if run_id is not None and decision.replace:
            self._replace(name, run_id)
        if run_id is None:
            started = self._ledger.started_count(name) if policy.needs_started(s) else 0
            return self._refused(name, slot, request, revision,
                                 policy.refused(s, request, now, started=started, blocked=blocked))
        active = Active()
        with self._lock:
            self._active[name].append(active)
            self._owned[run_id] = active
            late_stop = self._stop_all
        if late_stop is not None:  # claimed as the grace ended: stopped like the others
            active.stop(RunStatus.INTERRUPTED, late_stop[0], kill_after=late_stop[1])
        if run_id not in self.replica.held():  # fenced between its claim and now: never starts for long
            self._fence([run_id], "this reconciler stopped the run: its lease was lost as it started")
        logged = _logged(request, revision)
        self._log("run.start", schedule=name, slot=utc_text(slot), run_id=run_id, **logged)
        try:
            result = self._execute(s, name, slot, run_id, request.attempt, revision, active)
        finally:
            self.replica.release(run_id)
            with self._lock:
                self._active[name].remove(active)
                if not self._active[name]:
                    del self._active[name]
                del self._owned[run_id]
            active.done.set()
        if pool is not None:
            self._offer(pool)  # a run of the pool ended here: the next queued slot may start
        end = self._clock()
        used = result.usage or Usage()
        written = self._finish(name, run_id, Outcome(result.status, end, result.exit_code, result.http_status,
                                                     result.error, result.output, result.dropped, used.peak_memory,
                                                     used.cpu_user, used.cpu_system), s.history_keep)
        if written is None:
            return run_id  # shutting down before the ledger answered: its lease expires, never guessed
        if not written:
            # Its lease expired and a reaper ended it first: that end stands, nothing follows from ours.
            self._log("run.end_ignored", schedule=name, slot=utc_text(slot), run_id=run_id, status=result.status,
                      reason="the run was abandoned meanwhile (its lease had expired)", **logged)
            return run_id
        self._finished(RunRecord(run_id, name, slot, request.attempt, request.cause, result.status, revision, now,
                                 end, result.exit_code, result.http_status, result.error,
                                 peak_memory=used.peak_memory, cpu_user=used.cpu_user, cpu_system=used.cpu_system),
                       result.output)
        if self._downstream.get(name):
            self._after(s, slot, result.status, request.attempt, end)
        self._log("run.end", schedule=name, slot=utc_text(slot), run_id=run_id, status=result.status,
                  exit_code=result.exit_code, http_status=result.http_status, error=result.error,
                  duration_ms=round((end - now).total_seconds() * 1000, 1), **logged)
        delay = policy.retry_delay(s.policy.retries, result.status, request.attempt)
        if delay is not None and self._accepting:
            self.retry(name, slot, request.attempt + 1, delay)
        return run_id

    # ---- dependencies (issue 18) ----------------------------------------------------------------------

    def _after(self, upstream: Schedule, slot: datetime, status: RunStatus, attempt: int, ended: datetime) -> None:
        """A run of `upstream` ended: start, with its slot, each schedule `after` it that the policy
        says this outcome triggers. The claim's unique key (schedule, slot, attempt) keeps that
        once across replicas and restarts, whoever asks first."""
        final = policy.final(upstream.policy.retries, status, attempt)
        with self._lock:
            self._followed[(upstream.name, slot, attempt)] = ended
            names, live = self._downstream.get(upstream.name, ()), self._live
        for name in names:
            down = live.get(name)
            if down is None:
                continue
            outcomes = self._slot_outcomes(down.deps.after, slot) if down.deps.all else {}
            if policy.triggers(down, upstream.name, status, final, outcomes):
                # Due when the upstream ended: a downstream asked later than its starting_deadline
                # (a poll after a restart) is recorded missed, unless it ran already.
                self.dispatch(name, slot, ended, cause=Cause.UPSTREAM)

    def start_polling(self, interval: float) -> None:
        """Every `interval` seconds, follow upstream runs that ended in any process (another
        replica, a reaper, one that died before it could ask), so no downstream depends on the
        process that ran its upstream staying up; and `all:` upstreams that ended at once on two
        replicas, each before the other was recorded, still start their downstream."""
        def loop() -> None:
            while not self._polling.wait(interval):
                try:
                    self.poll_upstreams()
                except LedgerFull:
                    pass
                except Exception as e:  # a bug here must not end the polling silently
                    self._log("run.error", error=f"polling upstream runs: {type(e).__name__}: {e}")

        threading.Thread(target=loop, name="upstreams", daemon=True).start()

    def poll_upstreams(self, page: int = 200) -> None:
        """Runs that ended since the last poll, of schedules others come `after`: their downstreams
        are asked for as if this process had run them (a slot claimed already stays unclaimed here)."""
        with self._lock:
            downstream, live = self._downstream, self._live
        if not downstream or not self._accepting:
            return
        floor, before, lowest_running, newest = self._poll_floor, None, None, self._poll_floor
        while True:
            rows = self._ledger.runs(None, limit=page, before_id=before)
            for r in rows:
                newest = max(newest, r.id)
                if r.status == RunStatus.RUNNING:
                    lowest_running = r.id
                    continue
                s = live.get(r.schedule)
                # Below the floor every run had ended at the last poll, which followed it then.
                if r.id < floor or r.schedule not in downstream or s is None or r.status not in policy.ENDED:
                    continue
                with self._lock:
                    seen = (r.schedule, r.slot, r.attempt) in self._followed
                if not seen and r.finished_at is not None:
                    self._after(s, r.slot, r.status, r.attempt, r.finished_at)
            if not floor or len(rows) < page or rows[-1].id <= floor:  # the first poll reads one page
                break
            before = rows[-1].id
        self._poll_floor = lowest_running if lowest_running is not None else newest
        cutoff = self._clock() - timedelta(hours=1)
        with self._lock:
            self._followed = {k: v for k, v in self._followed.items() if v >= cutoff}

    def _slot_outcomes(self, names: Collection[str], slot: datetime) -> dict[str, RunStatus | None]:
        """Each schedule's final status for one slot (its newest attempt), None when it has none."""
        out: dict[str, RunStatus | None] = {}
        for n in names:
            with self._lock:
                s = self._live.get(n)
            newest = next((r for r in self._ledger.runs(n, since=slot, limit=50) if r.slot == slot), None)
            final = newest is not None and s is not None and newest.status in policy.ENDED and \
                policy.final(s.policy.retries, newest.status, newest.attempt)
            out[n] = newest.status if final and newest is not None else None
        return out

    def _ended(self, names: Collection[str]) -> dict[str, policy.Ended | None]:
        """Each schedule's newest run that ran to an end (what `requires` reads)."""
        out: dict[str, policy.Ended | None] = {}
        for n in names:
            newest = [r for st in policy.ENDED for r in self._ledger.runs(n, status=st, limit=1)]
            last = max(newest, key=lambda r: r.id, default=None)
            out[n] = policy.Ended(last.status, last.finished_at) if last and last.finished_at else None
        return out
    def _finish(self, name: str, run_id: int, outcome: Outcome, keep: int | None) -> bool | None:
        """Write the run's end, trying again while the ledger cannot be reached: a run that ended
        is never lost to a restart of the database, nor guessed. None: given up at shutdown."""
        pauses = iter(FINISH_RETRY_PAUSES)
        logged = False
        while True:
            try:
                written = self._ledger.finish(run_id, outcome, keep=keep)
            except LedgerError as e:  # LedgerFull is kept by the ledger itself: not raised
                self.health.failed(str(e))
                if not logged:
                    self._log("run.finish_retrying", schedule=name, run_id=run_id, status=outcome.status,
                              error=str(e), effect="written as soon as the ledger answers again")
                    logged = True
                if self._giving_up.wait(next(pauses, FINISH_RETRY_PAUSES[-1])):
                    self._log("run.end_unrecorded", schedule=name, run_id=run_id, status=outcome.status,
                              reason="the reconciler stopped before the ledger answered; the run's lease expires "
                                     "and it is abandoned")
                    return None
                continue
            self.health.ok()
            if logged:
                self._log("run.finish_written", schedule=name, run_id=run_id, status=outcome.status)
            return written

    def _refused_stale(self, name: str, slot: datetime, revision: str, newest: str) -> None:
        decision = policy.superseded(newest)
        self._count(name, decision.reason)
        with self._lock:
            said, self._superseded[name] = self._superseded.get(name), newest
        if said != newest:  # once per schedule and newer revision, not once per slot
            self._log("run.superseded", schedule=name, slot=utc_text(slot), revision=revision, newest=newest,
                      reason=decision.message)
            if self.on_superseded is not None:
                self.on_superseded(newest)

    def _count(self, name: str, reason: policy.SkipReason) -> None:
        if self.on_refused is not None:
            try:
                self.on_refused(name, reason)
            except Exception as e:  # an observer's bug must not stop the runner
                self._log("run.observer_error", schedule=name, error=repr(e))

    def _replace(self, name: str, run_id: int) -> None:
        """`replace`, once the new run's claim succeeded (a replica that lost the slot stops
        nothing): this process stops its own running runs of the schedule; those other replicas
        own are stopped by their owners, asked through the ledger."""
        why = f"replaced by run {run_id} (concurrency: replace) on replica {self.replica.id}"
        with self._lock:
            running = list(self._active[name])
        for h in running:
            h.stop(RunStatus.CANCELLED, why)
        try:
            asked = self._ledger.request_stop(name, owner=self.replica.id, reason=why)
        except LedgerError as e:  # the new run goes on; the old ones end on their own
            self._log("run.stop_request_failed", schedule=name, run_id=run_id, error=str(e))
            return
        for other, owner in asked:
            self._log("run.stop_requested", schedule=name, run_id=other, owner=owner, by_run=run_id)

    def _stop_requested(self, requests: dict[int, str]) -> None:
        """Another replica asked to stop these runs of ours (`replace`): they end `cancelled`."""
        with self._lock:
            runs = [(self._owned[r], why) for r, why in requests.items() if r in self._owned]
        for active, why in runs:
            active.stop(RunStatus.CANCELLED, why)

    def _refused(self, name: str, slot: datetime, request: Request, revision: str,
                 decision: Skip | Queue) -> int | None:
        """The claim failed: what the policy says to do instead."""
        if isinstance(decision, Skip):
            self._count(name, decision.reason)
        if isinstance(decision, Queue):
            if request.cause == Cause.BACKFILL:
                raise _Blocked(decision.delay)  # the backfill waits in its own thread
            self.retry(name, slot, request.attempt, decision.delay, due=decision.due)
            return None
        if decision.reason == policy.SkipReason.COMPLETED:
            self._log("schedule.completed", schedule=name, reason=decision.message)
            if self.on_completed:
                self.on_completed(name)
            return None
        if not decision.recorded:
            return None
        # Recorded unless another process claimed the slot meanwhile (the unique key).
        return self._skip(name, slot, request, revision, RunStatus.SKIPPED, decision.message, decision.reason)

    def _execute(self, s: Schedule, name: str, slot: datetime, run_id: int, attempt: int, revision: str,
                 active: Active) -> Attempt:
        context = Context(name, slot, run_id, attempt, revision, self._environ,
                          on_started=lambda where: self._record_processes(name, run_id, where))
        try:
            active.started(kind(s.run.kind).start(s.run, context))
            return active.wait()
        except Exception as e:  # a bug must still finish the run (then retries and notifications follow)
            return Attempt(RunStatus.FAILED, error=f"could not run: {type(e).__name__}: {e}")

    def _record_processes(self, name: str, run_id: int, where: str) -> None:
        try:
            self._ledger.set_processes(run_id, where)
        except Exception as e:  # the run goes on; only a crash during it would miss the record
            self._log("run.processes_unrecorded", schedule=name, run_id=run_id, error=repr(e))

    def _claim(self, name: str, slot: datetime, now: datetime, request: Request, revision: str,
               claim: Claim, spec_hash: str | None = None, pool: str | None = None,
               pool_size: int | None = None) -> tuple[int | None, bool]:
        """The run's id, or None and whether another running run of the schedule was in the way."""
        for _ in range(3):
            sent = self.replica.now()
            run_id = self._ledger.claim(name, slot, attempt=request.attempt, cause=request.cause, revision=revision,
                                        started_at=now, owner=self.replica.id, counted=claim.counted,
                                        max_runs=claim.max_runs, exclusive=claim.exclusive,
                                        lease=self.replica.times.lease, spec_hash=spec_hash, pool=pool,
                                        pool_size=pool_size)
            if run_id is not None:
                self.replica.hold(run_id, sent)
            if run_id is not None or not claim.exclusive:
                return run_id, False
            holders = self._ledger.open_runs(name)
            if any((r.slot, r.attempt) == (slot, request.attempt) for r, _ in holders):
                return None, False  # this very slot runs elsewhere
            if not holders:
                continue  # it ended in between; or the slot ran already, and the next try says so too
            # Held by a run whose lease expired (its reconciler died): it is abandoned now, instead
            # of holding the schedule until the next reap.
            if self.replica.reap() == 0:
                return None, True
        return None, False

    # ---- pools (issue 18) -----------------------------------------------------------------------------

    def _queue_for_pool(self, s: Schedule, name: str, slot: datetime, request: Request, revision: str,
                        now: datetime, since: datetime, size: int) -> None:
        """No room in the pool: queued (by priority, then slot time) until its deadline, then missed."""
        assert s.policy.pool is not None
        waited = policy.pool_wait(s, request, now, since=since, size=size)
        if isinstance(waited, Miss):
            self._skip(name, slot, request, revision, RunStatus.MISSED, waited.message, waited.reason)
            return
        w = self.pool_queue.make(s.policy.pool, policy.pool_order(s, slot), name, slot, request, since)
        if not self.pool_queue.put(w):
            miss = policy.overflow(self.pool_queue.bound, self.pool_queue.bound)
            self._skip(name, slot, request, revision, RunStatus.MISSED, miss.message, miss.reason)
            return
        self._log("run.queued", schedule=name, slot=utc_text(slot), pool=s.policy.pool, size=size,
                  priority=s.policy.priority, **_logged(request, revision))

    def _offer(self, pool: str) -> None:
        """Offer the head of the pool's queue to a worker (one offer of a pool at a time)."""
        if not self._accepting:
            return
        w = self.pool_queue.take(pool)
        if w is None:
            return
        try:
            self._pool.submit(self._offered, w)
        except RuntimeError:  # the workers stopped: shutdown records what is left
            self.pool_queue.done(w)
            self.pool_queue.put(w)

    def _offered(self, w: Waiting) -> None:
        try:
            self._guarded(w.name, w.slot, w.request, pooled=w)
        finally:
            # Not claimed, nor queued again (removed, paused, missed...): the next one is offered.
            if self.pool_queue.done(w):
                self._offer(w.pool)

    def _poll_pools_loop(self) -> None:
        while not self._polling.wait(policy.POOL_POLL.total_seconds()):
            try:
                self.poll_pools()
            except Exception as e:  # a bug here must not end the polling silently
                self._log("run.error", error=f"polling pools: {type(e).__name__}: {e}")

    def poll_pools(self) -> None:
        """Record the queued slots past their deadline, and offer each pool's head again: a run
        on another replica may have ended."""
        now = self._clock()
        with self._lock:
            live, sizes = self._live, self.pool_sizes

        def late(w: Waiting) -> bool:
            s = live.get(w.name)
            return s is not None and w.pool in sizes and isinstance(
                policy.pool_wait(s, w.request, now, since=w.since, size=sizes[w.pool]), Miss)

        for w in self.pool_queue.expire(late):
            miss = policy.pool_wait(live[w.name], w.request, now, since=w.since, size=sizes[w.pool])
            assert isinstance(miss, Miss)
            self._record_miss(w.name, w.slot, w.request, miss)
        for pool in self.pool_queue.pools():
            self._offer(pool)

    def pool_state(self) -> dict[str, dict[str, int]]:
        """Each pool's size and the slots this reconciler has queued for it (metrics, the API)."""
        with self._lock:
            sizes = dict(self.pool_sizes)
        queued = self.pool_queue.queued()
        return {p: {"size": sizes.get(p, 0), "queued": queued.get(p, 0)} for p in sorted(sizes.keys() | queued.keys())}

    def _fence(self, run_ids: Collection[int], why: str) -> None:
        """Stop runs whose lease this replica could not renew; they end `abandoned`."""
        with self._lock:
            runs = [self._owned[r] for r in run_ids if r in self._owned]
        for active in runs:
            active.stop(RunStatus.ABANDONED, why, kill_after=self.replica.times.kill_after)

    def _skip(self, name: str, slot: datetime, request: Request, revision: str, status: RunStatus,
              why: str, reason: policy.SkipReason) -> int | None:
        now = self._clock()
        run_id = self._ledger.record(name, slot, attempt=request.attempt, cause=request.cause, revision=revision,
                                     outcome=Outcome(status, now, error=why))
        if run_id is not None:
            self._log(f"run.{status}", schedule=name, slot=utc_text(slot), run_id=run_id, error=why, reason=reason,
                      **_logged(request, revision))
            self._finished(RunRecord(run_id, name, slot, request.attempt, request.cause, status, revision, None, now,
                                     None, None, why), "")
        return run_id

    def _finished(self, record: RunRecord, output: str) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(record, output)
            except Exception as e:  # an observer's bug must not lose the run
                self._log("run.observer_error", schedule=record.schedule, run_id=record.id, error=repr(e))

    def retry(self, name: str, slot: datetime, attempt: int, delay: timedelta, *, due: datetime | None = None,
              cause: Cause = Cause.RETRY) -> None:
        """Run `attempt` of a slot after `delay` (a timer thread; cancelled at shutdown). `due`: when
        it first became due, for a retry that waits for a running run (its starting_deadline)."""
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self.dispatch(name, slot, due or self._clock(), cause=cause, attempt=attempt)

        timer = threading.Timer(delay.total_seconds(), fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def later(self, name: str, slot: datetime, request: Request, delay: timedelta) -> None:
        """Dispatch the slot again after `delay`, as `request` (deferred to a window or a business
        day; a timer thread, cancelled at shutdown: a deferred slot does not outlive the process)."""
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self._enqueue(name, slot, request)

        timer = threading.Timer(delay.total_seconds(), fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def behind(self, name: str, first: datetime, latest: datetime) -> None:
        """Called on the timer thread when the slots `first` .. `latest` of a schedule came due at
        once: they are caught up as after a restart (one summary row, at most one run)."""
        if self._accepting:
            self._pool.submit(self._caught_up, name, first, latest)

    def _caught_up(self, name: str, first: datetime, latest: datetime) -> None:
        with self._lock:
            s, revision = self._live.get(name), self._revision
        if s is None or not self._accepting:
            return
        try:
            make_up(self._ledger, name, s, gap(s.timing, first - _TICK, latest + _TICK), revision, self._clock(),
                    self.dispatch, self._log, BEHIND)
        except Exception as e:  # a bug here must not kill the worker pool silently
            self._log("run.error", schedule=name, slot=utc_text(latest), error=f"{type(e).__name__}: {e}")

    # ---- shutdown -------------------------------------------------------------------------------

    def shutdown(self, grace: float) -> None:
        """Stop claiming; let running jobs finish within `grace` seconds; then stop the rest (SIGTERM,
        and SIGKILL SHUTDOWN_KILL_AFTER seconds later) and record them `interrupted`."""
        self._polling.set()
        with self._lock:
            self._accepting = False
            for t in self._timers:
                t.cancel()
            # Every slot past the accepting check, a run being claimed as we stop included, gets
            # the grace to end and be recorded.
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=grace)
        why = f"the reconciler stopped and the grace period ({grace:g}s) ended"
        with self._lock:
            self._stop_all = (why, SHUTDOWN_KILL_AFTER)
            handles = [h for hs in self._active.values() for h in hs]
        for h in handles:
            if not h.done.is_set():
                h.stop(RunStatus.INTERRUPTED, why, kill_after=SHUTDOWN_KILL_AFTER)
        # Ends not yet written (the ledger unreachable) are tried once more for as long, then given up.
        giving_up = threading.Timer(grace, self._giving_up.set)
        giving_up.daemon = True
        giving_up.start()
        self._pool.shutdown(wait=True, cancel_futures=True)
        # What still waited for a worker gets its row now (the workers recorded what they took).
        with self._lock:
            left, revision = list(self._waiting), self._revision
            self._waiting.clear()
        left.extend((w.name, w.slot, w.request, w.since, False) for w in self.pool_queue.drain())
        for name, slot, request, *_ in left:
            if (miss := policy.shut_down(request)) is not None:
                self._recorder.submit(self._skip_guarded, name, slot, request, revision, miss)
        self._recorder.shutdown(wait=True)
        giving_up.cancel()  # every run is over: no thread outlives the shutdown
        giving_up.join()
        self.replica.stop()  # after the runs ended: their leases were kept until then


class Active:
    """A run of this process, from its claim to its end: a stop asked before the kind started it
    (a shutdown, a `replace`) is passed on as soon as it has."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self._handle: Handle | None = None
        self._stop: tuple[RunStatus, str | None, float] | None = None
        self._lock = threading.Lock()

    def started(self, handle: Handle) -> None:
        with self._lock:
            self._handle, stop = handle, self._stop
        if stop is not None:
            handle.stop(*stop)

    def wait(self) -> Attempt:
        assert self._handle is not None
        return self._handle.wait()

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
        with self._lock:
            handle = self._handle
            if handle is None:
                # The first reason stays, and the shortest SIGKILL delay, as a handle keeps them.
                kept = self._stop
                self._stop = (kept[0], kept[1], min(kept[2], kill_after)) if kept else (reason, why, kill_after)
                return
        handle.stop(reason, why, kill_after)


def _logged(request: Request, revision: str) -> dict[str, Any]:
    """The fields every line about a run carries (`trigger` is the run's cause in the logs, as in the ledger)."""
    return {"attempt": request.attempt, "trigger": request.cause, "revision": revision}


def _max_waiting(environ: Mapping[str, str]) -> int:
    text = environ.get("RECONCILER_MAX_WAITING", "").strip()
    try:
        return max(1, int(text)) if text else MAX_WAITING
    except ValueError:
        return MAX_WAITING
