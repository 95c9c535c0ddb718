"""The daemon: source, plan, timer, runner and ledger put together, and the watch loop.

`Reconciler.reconcile(snapshot)` is one reconcile step, a plain function of its inputs; the
watch loop only decides when to call it. Git is the truth of what should run, the ledger of what
happened, and APScheduler is only the timer, rebuilt from both at start-up.

What is live is one frozen value, `Reconciler.live`, published whole at the end of each step (and
when the ledger's or a run's news changes it); readers take it once. The HTTP server and the
process's start and stop order are service/app.py's, which nothing here imports.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import immutables

from reconciler.core import selectors
from reconciler.core.deps import DepRef, followers
from reconciler.core.loader import Loader, PathError, build_from_spec, resolve
from reconciler.core.model import Schedule
from reconciler.core.plan import Plan, SpecsOf, plan
from reconciler.core.selectors import selects
from reconciler.engine.apply import apply_plan
from reconciler.engine.catchup import catch_up, resume_retries
from reconciler.engine.leases import LeaseTimes
from reconciler.engine.notify import Notifier
from reconciler.engine.runner import Clock, Runner
from reconciler.engine.timer import Timer
from reconciler.ledger.base import PRUNE_EVERY, AppliedRevision, Ledger, LedgerError, RunRecord, changes_between
from reconciler.service import audit
from reconciler.service.live import Live
from reconciler.service.log import Log
from reconciler.service.metrics import Metrics, gauges
from reconciler.service.parsecache import ParseCache
from reconciler.service.source import DirectorySource, Snapshot, quiet_gc
from reconciler.service.tokens import Tokens


@dataclass
class Options:
    directory: str = "schedules"
    allow_empty: bool = False
    rescan: timedelta = timedelta(seconds=60)
    selector: Mapping[str, str] = field(default_factory=dict)
    grace: float = 25.0
    listen: tuple[str, int] | None = ("127.0.0.1", 8080)
    token: str | Tokens | None = None  # operator actions over HTTP only when set (service/tokens.py)
    read_token_required: bool = False  # reads over HTTP need a token too
    public_url: str | None = None  # links to runs in notifications
    allowed_hosts: tuple[str, ...] = ()  # more names the HTTP server answers to (Host header)
    leases: LeaseTimes = field(default_factory=LeaseTimes)  # heartbeat and lease (engine/leases.py)
    strict_cron: bool = False  # refuse the cron extensions beyond cronie (docs/cron.md)
    max_running: int | None = None  # runs at once (--max-running); None: the runner's default


def matches(selector: Mapping[str, str], schedule: Schedule) -> bool:
    return selects(selector, schedule.labels_dict)


class Reconciler:
    def __init__(self, options: Options, ledger: Ledger, log: Log, clock: Clock) -> None:
        self.options, self.ledger, self.log, self.clock = options, ledger, log, clock
        # The parse cache's entries hold for one way of checking: strict cron or not.
        self.source = DirectorySource(options.directory, Loader(strict_cron=options.strict_cron),
                                      cache=ParseCache.beside(getattr(ledger, "path", None),
                                                              variant=f"strict_cron={options.strict_cron}"),
                                      selector=options.selector)
        self.runner = Runner(ledger, log=log, clock=clock, leases=options.leases, max_workers=options.max_running)
        self.timer = Timer(self.runner.dispatch, self.runner.behind, clock)
        # Replaced whole, never changed in place: see `_publish`.
        self.live = Live(next_fire_times=self.timer.next_fire_times)
        self._publishing = threading.Lock()
        ledger.on_write_state = self._ledger_state
        self.runner.health.on_change = self._ledger_reachable
        self.runner.on_refused = self._refused
        self.runner.on_superseded = self._superseded
        self.startup: dict[str, Any] = {}
        self.metrics = Metrics(lambda: gauges(self.live, self.runner.running(), self.runner.waiting(),
                                              self._pauses(), self.clock(), self.pools()),
                               replicas=self._replicas, ledger=ledger, clock=clock)
        self.notifier = Notifier(log, lambda result: self.metrics.notifications.labels(result).inc(), os.environ,
                                 options.public_url)
        self.runner.on_finished = self._finished
        # Revisions are written to the ledger in order by one thread, after they are live: the
        # record is the audit trail, and 10,000 specs should not delay the timer.
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-revisions")
        self._ledger_had_schedules = False  # after a restart, "applied" starts empty in memory
        # The incremental path: the names that may differ between what is live and the newest
        # snapshot seen (None: unknown, compare everything), and that snapshot's number.
        self._pending: set[str] | None = None
        self._seen: int | None = None
        self._parent: int | None = None  # the revision this process recorded last (recorder thread only)
        self._recorded: Mapping[str, str] = immutables.Map()  # that revision's hashes (recorder thread only)
        # Names of the whole directory that may differ from the `every` map recorded last (None:
        # unknown), so the ledger's heads are written for them alone; and, on the recorder
        # thread, whether the last write failed (then the next one writes every head).
        self._unadvanced: set[str] | None = None
        self._advance_whole = True
        # The revision this replica last told the ledger it applied (the newest, or a stale one),
        # and a record that failed (the ledger unreachable), written again when it answers.
        self._advanced: str | None = None
        self._unrecorded: tuple[str, datetime, dict[str, int], Mapping[str, Schedule], Mapping[str, str],
                                Mapping[str, str]] | None = None
        self._warned: frozenset[str] = frozenset()  # warnings logged already, said once each
        self._lock = threading.Lock()
        self.started = False  # the timer fires (start() went to its end)

    # ---- start-up -------------------------------------------------------------------------------

    def start(self, stop: threading.Event | None = None) -> None:
        """Load, apply to the paused timer, catch up, then let the timer fire. A `stop` set by the
        time the load ends (SIGTERM while a large tree was read) ends the start there: no slot is
        caught up or fired, and `started` stays False."""
        self.notifier.seed(self.ledger.last_runs())
        last = self.ledger.last_revision()
        self._ledger_had_schedules = bool(last and last.hashes)
        t0 = time.perf_counter()
        with quiet_gc():  # before the timer's thread starts: the first load may fork a helper
            snapshot, cause = None, None
            if not self.source.available():
                # The watch loop waits for it and says so; the ledger's revision runs meanwhile.
                cause = f"{self.source.directory} does not exist (yet)"
            else:
                try:
                    snapshot = self.source.full(self.clock())
                except PathError as e:
                    self._fail(str(e))
                except Exception as e:  # whatever the directory holds, the ledger's revision still runs
                    self._fail(f"internal error: {type(e).__name__}: {e}", traceback.format_exc())
                    self.source.forget()
            t1 = time.perf_counter()
            # Registered as a replica (runs whose lease expired are abandoned) after the first load:
            # its heartbeat is a thread, and the load forks a helper only while there is none.
            self.runner.start()
            self.timer.start(paused=True)
            applied = False
            if snapshot is not None:
                try:
                    applied = self.reconcile(snapshot)
                except Exception as e:
                    self._fail(f"internal error: {type(e).__name__}: {e}", traceback.format_exc())
                    self._forget_applied()
            if not applied:
                self._restore_from_ledger(cause)
        self.startup = {"load_ms": round((t1 - t0) * 1000), "apply_ms": round((time.perf_counter() - t1) * 1000),
                        "parallel_load": self.source.last_load_parallel}
        if stop is not None and stop.is_set():
            self.log("reconciler.start_stopped", reason="asked to stop during the first load: nothing was run",
                     **self.startup)
            return
        self.started = True
        self.notifier.start()
        live = self.live
        if live.revision is not None:
            resume_retries(self.ledger, live.schedules, live.revision, self.clock(), self.runner.retry, self.log)
            catch_up(self.ledger, live.schedules, live.revision, self.clock(), self.runner.dispatch, self.log)
        self.runner.on_completed = self._completed
        self.runner.start_polling(self.options.leases.heartbeat.total_seconds())  # upstream runs of any replica
        self.timer.resume()
        self._save_cache()
        if self.source.cache.ignored:
            self.log("parse_cache.ignored", path=str(self.source.cache.path), reason=self.source.cache.ignored)

    def _save_cache(self) -> None:
        """Write the parse cache if the first load checked files: what to write is taken here,
        where the index is updated, and written by the recorder thread, off the path of any
        reconcile; then the cache lets go of its entries."""
        cache = self.source.cache
        if not self.source.cache_read:  # no load yet (the directory does not exist yet)
            return
        if cache.changed:
            self._recorder.submit(cache.save, self.source.cache_entries())
        cache.release()

    def _ledger_state(self, problem: str | None) -> None:
        """Called by the ledger when writes start failing for lack of space, and when they work
        again: one line each, not one per slot."""
        self._publish(lambda live: replace(live, status=replace(live.status, ledger_error=problem)))
        if problem is not None:
            self.log("ledger.write_failed", error=problem, effect="no slot is claimed or run until the ledger "
                     "can be written again")
        else:
            self.log("ledger.write_recovered")

    def _ledger_reachable(self, problem: str | None) -> None:
        """Told by the runner's health when the ledger stops answering and when it answers again:
        one line each, /readyz false meanwhile. Nothing is claimed (so nothing runs) until then."""
        self._set_status(ledger_unreachable=problem)
        if problem is not None:
            self.log("ledger.unreachable", error=problem, effect="no slot is claimed or run until the ledger "
                     "answers again; runs that end meanwhile are written then")
            return
        self.log("ledger.reachable")
        pending, self._unrecorded = self._unrecorded, None
        if pending is not None:
            self._recorder.submit(self._write_revision, *pending)

    def _superseded(self, newest: str) -> None:
        """A claim was refused for a newer revision another replica applied: this one is stale."""
        was = self.live.status.superseded_by
        if newest != was:
            self._set_status(superseded_by=newest)
            self.log("revision.stale", revision=self.live.status.applied_revision, newest=newest,
                     effect="schedules that the newest revision removed or changed are not run here")

    def _refused(self, name: str, reason: str) -> None:
        self.metrics.refused.labels(reason).inc()

    def _pauses(self) -> Mapping[str, Any]:
        """For a scrape: read fresh (at most once per TTL) while the ledger answers; while it is
        known to be down, the last view at once (a scrape must not wait for its timeouts)."""
        if self.live.status.ledger_unreachable is not None:
            return self.runner.pauses.cached()
        return self.runner.pauses.all()

    def _replicas(self) -> list[Any]:
        if self.live.status.ledger_unreachable is not None:
            return []  # a scrape answers now, without waiting for a ledger known to be down
        return list(self.ledger.replicas())

    def _finished(self, record: RunRecord, output: str) -> None:
        self.metrics.observe_run(record)
        schedule = self.live.schedules.get(record.schedule)
        if schedule is not None and schedule.notify:
            self.notifier.observe(schedule, record, output)

    def _completed(self, name: str) -> None:
        """max_runs reached: the timer stops firing the schedule; it stays listed as completed."""
        self._publish(lambda live: replace(live, completed=live.completed | {name}))
        self.timer.remove(name)

    def _forget_applied(self) -> None:
        """Undo what a failed start-up apply may have left half done: nothing is live."""
        self.timer.clear()
        self.runner.update({}, "")
        self._pending = None
        self._publish(lambda live: replace(live, schedules=immutables.Map(), hashes=immutables.Map(), status=replace(
            live.status, applied_revision=None, applied_at=None, ready=False)))

    def _publish(self, change: Callable[[Live], Live]) -> Live:
        """The next live value, from the current one: swapped in by one assignment, so a reader sees
        the old value or the new one, never a mix. Publishers (a reconcile step, the ledger's
        writer, a run reaching max_runs) take turns, so that none undoes another's change."""
        with self._publishing:
            self.live = live = change(self.live)
        return live

    def _set_status(self, **changes: Any) -> None:
        self._publish(lambda live: replace(live, status=replace(live.status, **changes)))

    def _restore_from_ledger(self, cause: str | None = None) -> None:
        """The directory cannot be applied at start-up: run what the ledger says was live."""
        cause = cause or self.live.status.error or "the directory could not be applied"
        try:
            self._restore(cause)
        except Exception as e:  # not even the ledger's revision: stay up, unready, and watch for a fix
            self._forget_applied()
            self._fail(f"the ledger's last revision could not be restored: {type(e).__name__}: {e}",
                       traceback.format_exc())

    def _restore(self, cause: str) -> None:
        last = self.ledger.last_revision()
        if last is None:
            return
        specs = last.specs(self.ledger)
        now = self.clock()
        restored, unusable = {}, []
        for name, spec in specs.items():
            try:
                schedule = build_from_spec(spec, f"ledger:{last.revision}", self.source.loader, now)
            except Exception:
                schedule = None
            if schedule is None:
                unusable.append(name)  # stored by an older version, and invalid by today's rules
            elif matches(self.options.selector, schedule):
                restored[name] = schedule
        # Windows and calendars from the shared files as last read: a schedule whose files cannot
        # be had is not run, rather than run outside its windows or on its excluded dates.
        ruled, _ = resolve(restored.values(), self.source.library())
        unusable.extend(n for n in restored if n not in {s.name for s in ruled})
        restored = {s.name: s for s in ruled}
        hashes = {n: s.spec_hash for n, s in restored.items()}
        self._pending = None
        self._apply(immutables.Map(restored), immutables.Map(hashes), last.revision,
                    plan(SpecsOf(restored), {}, desired_hashes=hashes, applied_hashes={}), self.clock(), {})
        self.log("revision.restored", revision=last.revision, schedules=len(restored),
                 reason="the directory could not be applied; running the last applied revision", cause=cause,
                 **({"unusable": sorted(unusable)} if unusable else {}))

    # ---- one reconcile step -----------------------------------------------------------------

    def reconcile(self, snapshot: Snapshot) -> bool:
        """Apply a snapshot if it is wholly valid and safe; otherwise keep what runs. True if applied.
        Whatever the outcome, it ends by publishing the next live value (once)."""
        started = time.perf_counter()
        now = self.clock()
        with self._lock:
            self._track(snapshot)
            live = self.live
            st = live.status
            rejected = st.attempted_revision
            # Not the first revision after waiting for git-sync's first clone: nothing ran before it.
            failing = bool(st.problems or st.error) and (rejected or st.applied_revision) is not None
            # A rejection is dated from when it was first seen.
            seen: dict[str, Any] = {"attempted_revision": snapshot.revision,
                                    "attempted_at": now if snapshot.revision != rejected else st.attempted_at}
            self._log_warnings(snapshot)
            errors = tuple(p for p in snapshot.problems if p.severity == "error")
            if errors:
                self._set_status(**seen, problems=errors, error=f"{len(errors)} problem(s) in the directory")
                self.log("revision.rejected", revision=snapshot.revision, problems=len(errors),
                         first=errors[0].format_text())
                for p in errors[:20]:
                    self.log("revision.problem", revision=snapshot.revision, problem=p.format_text())
                return False
            incremental = self._pending is not None and st.applied_revision is not None
            if incremental:
                desired, hashes, the_plan = self._plan_changes(snapshot, live, self._pending or set())
            else:
                desired, hashes = self._select(snapshot)
            had = live.schedules or (self._ledger_had_schedules and st.applied_revision is None)
            if not desired and not self.options.allow_empty:
                # As `validate` does, an empty directory is an error: a pod that turned ready on
                # zero schedules would hide a wrong --dir or a failed clone.
                what = ("the revision would remove every schedule" if had else
                        "no schedule matches --selector" if snapshot.schedules else "the directory holds no schedule")
                error = f"refused: {what} (use --allow-empty)"
                self._set_status(**seen, problems=(), error=error)
                self.log("revision.refused", revision=snapshot.revision, reason=error)
                return False
            if not incremental:
                the_plan = plan(SpecsOf(desired), SpecsOf(live.schedules), desired_hashes=dict(hashes),
                                applied_hashes=dict(live.hashes))
            self._pending = set()  # from here on, what is live is this snapshot
            accepted = {**seen, "problems": (), "error": None}
            if the_plan.empty and st.applied_revision is not None:
                # Nothing for the timer, but the records may still differ: a schedule moved to
                # another file keeps its spec and changes where it is shown to come from.
                self.runner.set_pools(self.source.library().pools or {})  # pools.yaml's sizes are live
                self.runner.update(desired, snapshot.revision, followers(snapshot.graph, desired))
                new = snapshot.revision != st.applied_revision  # e.g. a commit of what was saved
                if new:
                    accepted.update(applied_revision=snapshot.revision, applied_at=self.clock())
                self._publish(lambda live: replace(live, schedules=desired, hashes=hashes,
                                                   status=replace(live.status, **accepted)))
                if new:
                    self.log("revision.applied", revision=snapshot.revision, summary=the_plan.summary(),
                             **the_plan.counts())
                    self._record(snapshot.revision, desired, hashes, the_plan, now, snapshot.hashes)
                if failing:  # e.g. the broken file reverted: nothing else would say so
                    self.log("revision.recovered", revision=snapshot.revision, rejected=rejected)
                return True
            self._apply(desired, hashes, snapshot.revision, the_plan, now, accepted, snapshot.graph)
            self._record(snapshot.revision, desired, hashes, the_plan, now, snapshot.hashes)
            if failing:
                self.log("revision.recovered", revision=snapshot.revision, rejected=rejected)
            self.metrics.reconcile.observe(time.perf_counter() - started)
        return True

    def _log_warnings(self, snapshot: Snapshot) -> None:
        """A skipped FIFO or device, a file without schedules: logged when first seen, not on every rescan."""
        warnings = [p.format_text() for p in snapshot.problems if p.severity == "warning"]
        for text in [w for w in warnings if w not in self._warned][:20]:
            self.log("revision.warning", revision=snapshot.revision, problem=text)
        self._warned = frozenset(warnings)

    def _track(self, snapshot: Snapshot) -> None:
        """Add the snapshot's changed names to those pending, if it follows the one seen last."""
        delta = snapshot.delta
        if self._pending is not None and delta is not None and delta.base == self._seen:
            self._pending |= delta.names
        else:
            self._pending = None
        if self._unadvanced is not None and delta is not None and delta.base == self._seen:
            self._unadvanced |= delta.names
        else:
            self._unadvanced = None
        self._seen = snapshot.number

    def _select(self, snapshot: Snapshot) -> tuple[Mapping[str, Schedule], Mapping[str, str]]:
        if not self.options.selector:
            return snapshot.schedules, snapshot.hashes  # the snapshot's own maps, never changed: shared
        chosen = {n: s for n, s in snapshot.schedules.items() if matches(self.options.selector, s)}
        return immutables.Map(chosen), immutables.Map({n: s.spec_hash for n, s in chosen.items()})

    def _plan_changes(self, snapshot: Snapshot, live: Live, names: AbstractSet[str]
                      ) -> tuple[Mapping[str, Schedule], Mapping[str, str], Plan]:
        """The next live maps and the plan, from what is live and the names that may differ only:
        O(those names · log N), whatever the number of schedules."""
        selector = self.options.selector
        new = {n: s for n in names if (s := snapshot.schedules.get(n)) is not None and matches(selector, s)}
        new_h = {n: snapshot.hashes[n] for n in new}
        old = {n: s for n in names if (s := live.schedules.get(n)) is not None}
        old_h = {n: live.hashes[n] for n in old}
        if not selector:
            # What is live equals the snapshot but for these names: its maps are shared, not copied.
            desired, desired_h = _persistent(snapshot.schedules), _persistent(snapshot.hashes)
        else:
            schedules, hashes = _persistent(live.schedules), _persistent(live.hashes)
            with schedules.mutate() as ms, hashes.mutate() as mh:
                for name in names:
                    if name in new:
                        ms[name], mh[name] = new[name], new_h[name]
                    else:
                        ms.pop(name, None)
                        mh.pop(name, None)
                desired, desired_h = ms.finish(), mh.finish()
        part = plan(SpecsOf(new), SpecsOf(old), desired_hashes=new_h, applied_hashes=old_h)
        moved = frozenset(c.name for c in (*part.added, *part.changed))
        return desired, desired_h, replace(part, unchanged=_Unchanged(desired, moved))

    def pools(self) -> dict[str, dict[str, int]]:
        """Each pool of pools.yaml (and any this replica still queues for): its size, its runs
        running across every replica (from the ledger; -1 while it cannot be read), and the slots
        this replica has queued for room."""
        state = self.runner.pool_state()
        if not state:  # no pools: no query at each scrape
            return state
        try:
            running: dict[str, int] | None = self.ledger.pool_running()
        except LedgerError:
            running = None
        for name, p in state.items():
            p["running"] = running.get(name, 0) if running is not None else -1
        return state

    def _apply(self, desired: Mapping[str, Schedule], hashes: Mapping[str, str], revision: str, the_plan: Plan,
               now: datetime, status: Mapping[str, Any], graph: Mapping[str, DepRef] | None = None) -> None:
        """Runner, then timer, then the live value: the runner learns the new set before the timer
        changes, so a slot of a removed schedule never starts and a new schedule's first slot always
        finds its spec; readers see the revision once the timer holds it."""
        self.runner.set_pools(self.source.library().pools or {})
        self.runner.update(desired, revision, followers(graph, desired) if graph is not None else None)
        apply_plan(self.timer, the_plan, desired, now)
        changes = {**status, "applied_revision": revision, "applied_at": self.clock(), "ready": True}
        self._publish(lambda live: replace(live, schedules=desired, hashes=hashes,
                                           status=replace(live.status, **changes)))
        self.log("revision.applied", revision=revision, summary=the_plan.summary(), **the_plan.counts())

    def _record(self, revision: str, desired: Mapping[str, Schedule], hashes: Mapping[str, str], the_plan: Plan,
                now: datetime, every: Mapping[str, str]) -> None:
        """`every`: the hashes of the whole directory, before --selector: replicas that select
        different schedules still agree on which ones a revision removed or changed."""
        new = {c.name: desired[c.name] for c in (*the_plan.added, *the_plan.changed)}
        changes: dict[str, str | None] = {name: hashes[name] for name in new}
        changes.update((c.name, None) for c in the_plan.removed)
        names, self._unadvanced = self._unadvanced, set()
        heads = None if names is None else {n: every.get(n) for n in names}
        self._recorder.submit(self._write_revision, revision, now, the_plan.counts(), new, hashes, every, changes,
                              lambda name: desired[name].spec, heads)

    def _write_revision(self, revision: str, now: datetime, counts: dict[str, int], new: Mapping[str, Schedule],
                        hashes: Mapping[str, str], every: Mapping[str, str],
                        changes: dict[str, str | None] | None = None,
                        spec: Callable[[str], dict[str, Any]] | None = None,
                        heads: Mapping[str, str | None] | None = None) -> None:
        """Tell the ledger this replica applied `revision`, then record it, unless it is stale (a
        newer revision is known): then the newest stays the ledger's last, which is what a restart
        restores and `plan --ledger` compares with. Recorded as the changes against the revision
        this process recorded before (`changes` None: whole); the first after a start, against the
        ledger's last revision (compared here, off the reconcile path).

        `heads`: the names of `every` that changed since the revision recorded before, so the ledger
        writes only their heads; after a write that failed, every head is written again."""
        replica = self.runner.replica.id
        whole = self._advance_whole
        self._advance_whole = True  # until this write is known to have worked
        try:
            newest = self.ledger.advance_revision(revision, every, replica=replica, previous=self._advanced,
                                                  changes=None if whole else heads)
            self._advance_whole = False
            if newest is None:
                # Unpacked one at a time as the ledger writes them: the first revision holds every
                # spec, and their dicts all at once would stay in the resident memory.
                specs: Mapping[str, Any] = SpecsOf(new)
                parent = self._parent if changes is not None else None
                # The audit's plan is against the ledger's last revision (service/audit.py): when it
                # is the one this process recorded, its hashes are at hand and only `changes`
                # need comparing; otherwise (a start, another replica's) it is read whole.
                newest_rows = self.ledger.revisions(1)
                previous: AppliedRevision | None = None
                against: tuple[Mapping[str, str], AbstractSet[str]] | None = None
                if parent is not None and changes is not None and newest_rows and newest_rows[0][0] == parent:
                    against = (self._recorded, changes.keys())
                else:
                    previous = self.ledger.last_revision()
                if parent is None and changes is not None:
                    last = previous
                    if last is not None:
                        parent, changes = last.seq, changes_between(last.hashes, hashes)
                        stored = set(last.hashes.values())
                        missing = {n for n, h in changes.items()
                                   if h is not None and h not in stored and n not in specs}
                        if missing:  # specs the plan did not carry (it compared with another state)
                            found = self.ledger.specs({n: hashes[n] for n in missing})
                            specs = {**specs, **found}
                            if len(found) < len(missing):
                                parent = None
                seq = self.ledger.record_revision(revision, now, counts, specs, hashes, parent=parent,
                                                  changes=changes, replica=replica)
                self._parent, self._recorded = seq, hashes
                if seq % PRUNE_EVERY == 0:
                    removed = self.ledger.prune_revisions()
                    if removed:
                        self.log("revision.pruned", removed=removed)
        except Exception as e:  # the revision still runs; say why the audit trail misses it
            self._parent = None
            self.log("revision.record_failed", revision=revision, error=f"{type(e).__name__}: {e}")
            # Written again when the ledger answers, with every spec: a later plan is relative to this one.
            self._unrecorded = (revision, now, counts, self.live.schedules, hashes, every)
            return
        self._advanced = revision
        was = self.live.status.superseded_by
        if newest != was:
            self._set_status(superseded_by=newest)
        if newest is not None and newest != was:
            self.log("revision.stale", revision=revision, newest=newest,
                     effect="schedules that the newest revision removed or changed are not run here")
        elif newest is None and was is not None:
            self.log("revision.current", revision=revision)
        if newest is not None:
            return
        try:
            audit.record(self.ledger, seq, revision, now, previous, hashes, spec or (lambda name: new[name].spec),
                         self.options.directory, against=against)
        except Exception as e:  # recorded, but without who changed what
            self.log("revision.audit_failed", revision=revision, error=f"{type(e).__name__}: {e}")

    def _fail(self, message: str, trace: str | None = None) -> None:
        with self._lock:
            self._set_status(error=message)
        if trace is None:
            self.log("revision.error", error=message)
        else:
            self.log("revision.error", error=message, traceback=trace)

    # ---- the loop --------------------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> None:
        """React to file events within milliseconds; rescan everything every `rescan` anyway,
        since an inotify queue overflow is dropped silently. While the directory does not exist
        (git-sync has not cloned yet), wait for it."""
        from watchfiles import watch
        from watchfiles._rust_notify import WatchfilesRustInternalError

        rescan = self.options.rescan.total_seconds()
        tick_ms = min(1000, max(100, int(rescan * 1000)))
        last_full = time.monotonic()
        while not stop.is_set():
            if not self.source.available():
                self._wait_for_directory(stop)
                last_full = time.monotonic()
                continue
            paths = self.source.watch_paths
            # What changed between the last full read and the moment this watch began is in no
            # event: the watch's first tick reads the whole tree once (unchanged files are cached).
            fresh = True
            try:
                for changes in watch(*paths, step=5, debounce=50, rust_timeout=tick_ms,
                                     yield_on_timeout=True, stop_event=stop, raise_interrupt=False):
                    due = time.monotonic() - last_full >= rescan
                    if not changes and not fresh and not due:
                        continue
                    full, fresh_tick, fresh = fresh or not changes or due, fresh, False
                    try:
                        now = self.clock()
                        # The first tick reads whole (events may have been missed before the
                        # watch began); a due rescan reads only what differs (`rescan`).
                        snapshot = (self.source.full(now) if fresh_tick else self.source.rescan(now) if full
                                    else self.source.changed([p for _, p in changes], now))
                        if full:
                            last_full = time.monotonic()
                        self.reconcile(snapshot)
                    except PathError as e:
                        if self.source.available():
                            self._fail(str(e))
                    except Exception as e:  # a bug must not stop what runs: keep it, say so, rescan
                        self._fail(f"internal error: {type(e).__name__}: {e}", traceback.format_exc())
                        self.source.forget()
                    if self.source.watch_paths != paths or not self.source.available():
                        break  # a link appeared or the directory went away: watch what is there now
            except FileNotFoundError:  # the watched directory itself went away
                pass
            except WatchfilesRustInternalError as e:
                # watchfiles cannot name a path whose bytes are not UTF-8 and drops the whole
                # batch: watch again, and read everything now, or the batch waits for the rescan.
                self.log("watch.restarted", reason=str(e))
                try:
                    self.reconcile(self.source.full(self.clock()))
                    last_full = time.monotonic()
                except PathError as err:
                    if self.source.available():
                        self._fail(str(err))
                except Exception as err:  # as above: keep what runs, say so
                    self._fail(f"internal error: {type(err).__name__}: {err}", traceback.format_exc())
                    self.source.forget()

    def _wait_for_directory(self, stop: threading.Event) -> None:
        """Until the directory exists: say so at once and then every WAITING_LOG_EVERY, watch its
        deepest existing ancestor (not recursively) for the next part of the path, and load the
        directory the moment it resolves."""
        from watchfiles import watch

        directory = str(self.source.directory)
        message = f"waiting for {directory} to appear (git-sync's first clone?)"
        with self._lock:
            self._set_status(error=message)
        self.log("source.waiting", directory=directory, ready=self.live.status.ready)
        logged = time.monotonic()
        self.source.loader.validator.is_valid({})  # compile it now, not when the first clone lands
        while not stop.is_set() and not self.source.available():
            ancestor = self.source.waiting_path()
            try:
                for _ in watch(ancestor, step=5, debounce=20, rust_timeout=1000, yield_on_timeout=True,
                               stop_event=stop, raise_interrupt=False, recursive=False):
                    if self.source.available() or self.source.waiting_path() != ancestor:
                        break
                    if time.monotonic() - logged >= WAITING_LOG_EVERY:
                        self.log("source.waiting", directory=directory, ready=self.live.status.ready)
                        logged = time.monotonic()
            except FileNotFoundError:  # the ancestor went away too: look again
                stop.wait(0.05)
        if stop.is_set():
            return
        try:
            self.reconcile(self.source.full(self.clock()))
        except PathError as e:  # gone again already; the loop waits again
            self._fail(str(e))
        self._save_cache()

    def stop(self) -> None:
        self.timer.shutdown(wait=False)
        self.runner.shutdown(self.options.grace)
        self._recorder.shutdown(wait=True)
        self.notifier.stop()


WAITING_LOG_EVERY = 30.0  # seconds between "still waiting for the directory" lines


def _persistent(m: Mapping[str, Any]) -> immutables.Map[str, Any]:
    return m if isinstance(m, immutables.Map) else immutables.Map(m)


class _Unchanged(AbstractSet[str]):
    """The unchanged names of a plan made from the changed names only: a view, not a copy."""

    def __init__(self, desired: Mapping[str, Any], moved: frozenset[str]) -> None:
        self._desired, self._moved = desired, moved

    def __contains__(self, name: object) -> bool:
        return name in self._desired and name not in self._moved

    def __iter__(self) -> Iterator[str]:
        return (n for n in self._desired if n not in self._moved)

    def __len__(self) -> int:
        return len(self._desired) - len(self._moved)


def parse_selector(items: Sequence[str]) -> dict[str, str]:
    return selectors.parse_selector(items)
