"""The timer: a small façade over APScheduler's background scheduler, one job per schedule.

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

from collections.abc import Iterable
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

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


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    def _process_jobs(self) -> float | None:
        wait: float | None = super()._process_jobs()
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
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def remove(self, name: str) -> bool:
        """Stop firing a schedule; False if the timer held no job for it."""
        try:
            self._scheduler.remove_job(name)
        except JobLookupError:
            return False
        return True

    def clear(self) -> None:
        """Remove every job."""
        self._scheduler.remove_all_jobs()

    def put(self, jobs: Iterable[Job]) -> None:
        """Add jobs in one step under the store lock, then wake the timer once. A job already
        there under the same name is replaced: the desired state wins, and a half-applied
        plan can never make every later one fail on a conflicting id."""
        scheduler, store = self._scheduler, self._store
        if scheduler.state == STATE_STOPPED:
            raise RuntimeError("start the timer (paused, if need be) before adding jobs")
        # In the store's own order (next fire time, then id; paused last): each insert lands at
        # the end of its sorted list instead of moving half of it.
        ordered = sorted(jobs, key=lambda j: (j.next_run_time is None, j.next_run_time or _EPOCH, j.id))
        with scheduler._jobstores_lock:
            for job in ordered:
                if store.lookup_job(job.id) is None:
                    store.add_job(job)
                else:
                    store.update_job(job)
        scheduler.wakeup()
