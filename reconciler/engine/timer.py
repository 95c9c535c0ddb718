"""The timer: a small façade over APScheduler's background scheduler, one job per schedule.

A schedule whose next fire is further off than `HORIZON` waits on a shelf of our own (a heap
of (fire time, name, timing)), not as an APScheduler job: a job, its trigger and the store's
entries weigh several hundred bytes, and most of a large fleet is hours from its next fire. The
timer's loop moves a shelved schedule into APScheduler once it is due within `HORIZON`, and moves
a job whose next fire went past twice that back onto the shelf after it fired; APScheduler stays
what fires every slot.

APScheduler stays the timer (its wake-ups, store ordering and executor hand-off); the rest of the
reconciler sees only `Timer`'s methods, never APScheduler. We add jobs in bulk: `add_job` checks
the callable's signature and resolves its reference on every call, yet all our jobs share one
fixed callable and fields we have already validated (docs/benchmarks.md has the figures).

APScheduler's private members we rely on are named in `PRIVATE_MEMBERS`, the one place that
lists them, verified against the releases in `VERIFIED_WITH` (pyproject.toml allows
`apscheduler>=3.11,<4`). tests/test_timer.py fails loudly if one of them disappears;
check them again before widening the range.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED

from reconciler.core.timing import Timing
from reconciler.engine.executor import Behind, Clock, Dispatch, SlotExecutor, fire_placeholder, utcnow
from reconciler.engine.trigger import SlotTrigger

# The APScheduler 3.11 releases whose private members below were checked (the test suite passed
# on each): 3.11.0 is the lower bound in requirements/lowest.txt.
VERIFIED_WITH = ("3.11.0", "3.11.1", "3.11.2", "3.11.3")
# (where, member, what we use it for). Instance attributes are looked for on a started Timer's
# scheduler and on a job built by `slot_job`; the rest on the class.
PRIVATE_MEMBERS = (
    ("apscheduler.schedulers.background:BackgroundScheduler", "_thread",
     "Timer.alive(): the timer's thread is running"),
    ("apscheduler.schedulers.base:BaseScheduler", "_process_jobs",
     "overridden to return a bounded sleep (MAX_SLEEP), so a clock step is seen within a second"),
    ("apscheduler.schedulers.base:BaseScheduler", "_jobstores_lock",
     "Timer.put(): jobs go into the store in one step, under the scheduler's store lock"),
    ("apscheduler.job:Job", "__setstate__",
     "slot_job(): a job is built as a job store rebuilds one (state format version 1)"),
    ("apscheduler.job:Job", "_scheduler", "slot_job(): set as add_job would"),
    ("apscheduler.job:Job", "_jobstore_alias", "slot_job(): set as add_job would"),
    ("apscheduler.executors.base:BaseExecutor", "_do_submit_job",
     "engine/executor.py: SlotExecutor hands slots to the runner instead of running jobs"),
    ("apscheduler.jobstores.memory:MemoryJobStore", "_jobs",
     "Timer: the store's last job (the furthest fire) is moved back onto the shelf"),
    ("apscheduler.executors.base:BaseExecutor", "_run_job_success",
     "engine/executor.py: APScheduler's instance count is released at once"),
)

_FUNC_REF = f"{fire_placeholder.__module__}:{fire_placeholder.__qualname__}"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every job's keyword arguments: none. One empty dict for all of them (APScheduler never changes
# a job's kwargs in place; `modify_job(kwargs=...)` replaces the dict).
_NO_KWARGS: dict[str, object] = {}
# APScheduler sleeps on a monotonic clock until the next fire time as read from the wall clock
# once; waking at least this often (seconds) sees a clock step within that time, not a slot later.
MAX_SLEEP = 1.0
# A schedule due within this long is an APScheduler job; one due later waits on the shelf. Far more
# than MAX_SLEEP, so a shelved schedule is always a job well before its fire time.
HORIZON = timedelta(minutes=5)
_US = timedelta(microseconds=1)


def slot_job(timer: Timer, name: str, trigger: SlotTrigger, next_run_time: datetime | None) -> Job:
    """A job built the way a job store rebuilds a stored one (APScheduler's pickling protocol):
    every field fixed but the name, the trigger and the next fire time."""
    job = Job.__new__(Job)
    job.__setstate__({
        "version": 1, "id": name, "name": name, "func": _FUNC_REF, "args": (), "kwargs": _NO_KWARGS,
        "trigger": trigger, "executor": "default",
        "misfire_grace_time": None,  # lateness is judged by the runner (policy.starting_deadline)
        "coalesce": False,  # every slot goes to the runner, which records skips and misses
        "max_instances": 1_000_000,  # concurrency is the runner's (policy.concurrency)
        "next_run_time": next_run_time,  # None: added paused, kept and listed, never fired
    })
    job._scheduler, job._jobstore_alias = timer._scheduler, "default"
    return job


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _US


class _Shelf:
    """Schedules not yet due within the horizon: a heap of (fire time in microseconds, name,
    trigger or timing), and by name the entry that stands (a heap entry that is not is stale)."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, str, SlotTrigger | Timing]] = []
        self.entries: dict[str, tuple[int, str, SlotTrigger | Timing]] = {}

    def put(self, name: str, fire: datetime, trigger: SlotTrigger) -> None:
        # A trigger without jitter holds nothing but its timing: the timing alone is kept.
        entry = (_micros(fire), name, trigger if trigger.keeps_slots else trigger.timing)
        self.entries[name] = entry
        heapq.heappush(self.heap, entry)

    def pop_due(self, until: int) -> Iterable[tuple[str, datetime, SlotTrigger]]:
        heap, entries = self.heap, self.entries
        while heap and heap[0][0] <= until:
            entry = heapq.heappop(heap)
            if entries.get(entry[1]) is entry:
                del entries[entry[1]]
                held = entry[2]
                trigger = held if isinstance(held, SlotTrigger) else SlotTrigger(held)
                yield entry[1], _EPOCH + entry[0] * _US, trigger
        if len(heap) > 2 * len(entries) + 64:  # many stale entries (removals): rebuild, O(N) seldom
            self.heap = list(entries.values())
            heapq.heapify(self.heap)

    def remove(self, name: str) -> bool:
        return self.entries.pop(name, None) is not None

    def clear(self) -> None:
        self.heap, self.entries = [], {}


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    timer: Timer

    def _process_jobs(self) -> float | None:
        self.timer._promote()
        wait: float | None = super()._process_jobs()
        self.timer._demote()
        if wait is None and self.state == STATE_RUNNING and self.timer._shelf.entries:
            wait = MAX_SLEEP  # nothing in APScheduler yet, but the shelf will have something due
        return wait if wait is None else min(wait, MAX_SLEEP)


class Timer:
    """One job per schedule; it fires slots into `dispatch` and does nothing else. Start it
    paused, put the jobs, then resume, so that no slot fires before the whole set is in."""

    def __init__(self, dispatch: Dispatch, behind: Behind | None = None, clock: Clock = utcnow) -> None:
        """`behind` receives the slots a schedule fell behind by (see SlotExecutor); without it
        every due slot is dispatched. `clock` must be the wall clock APScheduler reads too."""
        self._store = MemoryJobStore()
        self._scheduler = _Scheduler(timezone=UTC, executors={"default": SlotExecutor(dispatch, behind, clock)},
                                     jobstores={"default": self._store})
        self._scheduler.timer = self
        self._clock = clock
        self._shelf = _Shelf()
        self.horizon = HORIZON

    def start(self, paused: bool = False) -> None:
        self._scheduler.start(paused=paused)

    def resume(self) -> None:
        self._scheduler.resume()

    def wakeup(self) -> None:
        """Look at the jobs' fire times now rather than at the end of the current sleep."""
        self._scheduler.wakeup()

    def shutdown(self, wait: bool = True) -> None:
        self._scheduler.shutdown(wait=wait)

    def alive(self) -> bool:
        """Started and its thread running (for /healthz): a dead thread fires nothing."""
        thread = self._scheduler._thread
        return bool(self._scheduler.running and thread is not None and thread.is_alive())

    def next_fire_times(self) -> dict[str, datetime | None]:
        """Each job's next fire time; None for a paused (suspended) job. The timer advances them at
        every fire, so read them when they are needed rather than keep a copy."""
        with self._scheduler._jobstores_lock:
            fires: dict[str, datetime | None] = {job.id: job.next_run_time for job in self._scheduler.get_jobs()}
            fires.update((name, _EPOCH + entry[0] * _US) for name, entry in self._shelf.entries.items())
        return fires

    def remove(self, name: str) -> bool:
        """Stop firing a schedule; False if the timer held no job for it."""
        with self._scheduler._jobstores_lock:
            if self._shelf.remove(name):
                return True
        try:
            self._scheduler.remove_job(name)
        except JobLookupError:
            return False
        return True

    def clear(self) -> None:
        """Remove every job."""
        with self._scheduler._jobstores_lock:
            self._shelf.clear()
            self._scheduler.remove_all_jobs()

    def put(self, jobs: Iterable[Job]) -> None:
        """Add jobs in one step under the store lock, then wake the timer once. A job already
        there under the same name is replaced: the desired state wins, and a half-applied
        plan can never make every later one fail on a conflicting id."""
        self._put((job.id, job.trigger, job.next_run_time, job) for job in jobs)

    def put_slots(self, slots: Iterable[tuple[str, SlotTrigger, datetime | None]]) -> None:
        """As `put`, from (name, trigger, first fire time or None for paused): a job is built
        only for a schedule due within the horizon, so a bulk load never holds one for each."""
        self._put((name, trigger, fire, None) for name, trigger, fire in slots)

    def _put(self, items: Iterable[tuple[str, SlotTrigger, datetime | None, Job | None]]) -> None:
        scheduler, store = self._scheduler, self._store
        if scheduler.state == STATE_STOPPED:
            raise RuntimeError("start the timer (paused, if need be) before adding jobs")
        # In the store's own order (next fire time, then id; paused last): each insert lands at
        # the end of its sorted list instead of moving half of it.
        ordered = sorted(items, key=lambda i: (i[2] is None, i[2] or _EPOCH, i[0]))
        shelf, far = self._shelf, self._clock() + self.horizon
        with scheduler._jobstores_lock:
            for name, trigger, fire, job in ordered:
                shelved = shelf.remove(name)
                if fire is not None and fire > far:
                    if not shelved and store.lookup_job(name) is not None:
                        store.remove_job(name)
                    shelf.put(name, fire, trigger)
                    continue
                job = job or slot_job(self, name, trigger, fire)
                if shelved or store.lookup_job(name) is None:
                    store.add_job(job)
                else:
                    store.update_job(job)
        scheduler.wakeup()

    def _promote(self) -> None:
        """Shelved schedules due within the horizon become APScheduler jobs (the timer's thread)."""
        until = _micros(self._clock() + self.horizon)
        with self._scheduler._jobstores_lock:
            for name, fire, trigger in self._shelf.pop_due(until):
                self._store.add_job(slot_job(self, name, trigger, fire))

    def _demote(self) -> None:
        """Jobs whose next fire is beyond twice the horizon (they just fired, or the clock stepped
        back) go back onto the shelf: the store keeps its furthest job last (paused ones, whose
        fire time is None, after it)."""
        limit = self._clock() + 2 * self.horizon
        store = self._store
        with self._scheduler._jobstores_lock:
            jobs = store._jobs
            i = len(jobs) - 1
            while i >= 0 and jobs[i][1] is None:
                i -= 1
            while i >= 0 and jobs[i][0].next_run_time > limit:
                job = jobs[i][0]
                store.remove_job(job.id)
                self._shelf.put(job.id, job.next_run_time, job.trigger)
                i -= 1
