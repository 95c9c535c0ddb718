"""The run policy: every decision about a slot, a retry, a catch-up or a notification, as functions
of values (the schedule, the request, what the ledger knows, now). No I/O and no clock: the engine
asks, then does what it is told, and no ledger backend re-implements a rule.

A new input (a window, a calendar, a pause, a dependency) is a new argument of `decide`, or a
rule of its own asked beside it (`gate` for `requires`, `triggers` for `schedule.after`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler.core.describe import local_text, utc_text
from reconciler.core.durations import format_duration
from reconciler.core.model import SELF, Notify, Retries, Schedule
from reconciler.core.timerules import TimeRules, excluded, shiftable, shifted
from reconciler.core.timing import Missed
from reconciler.core.windows import judge, next_allowed


class RunStatus(StrEnum):
    """A run's status, as the ledger stores it and the API shows it."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # stopped by a newer run (`replace`)
    SKIPPED = "skipped"  # not started: the previous run still ran (`forbid`)
    MISSED = "missed"  # not started in time, or slots summed up by catch-up
    INTERRUPTED = "interrupted"  # stopped at shutdown when the grace ended
    ABANDONED = "abandoned"  # its reconciler went away during it; never run again


class Cause(StrEnum):
    """Why a run exists (the ledger's `trigger` column and the API's `trigger` field)."""

    SCHEDULE = "schedule"  # the timer fired its slot
    MANUAL = "manual"  # an operator asked (`reconciler trigger`, the API)
    RETRY = "retry"  # an earlier attempt of the same slot failed
    CATCHUP = "catchup"  # a slot passed while no reconciler ran, or the timer was behind
    BACKFILL = "backfill"  # an operator ran a past slot that had no run (`reconciler backfill`)
    UPSTREAM = "upstream"  # a finished run of a schedule it comes `after` (its slot is that run's)


class SkipReason(StrEnum):
    LATE = "late"  # missed: could not start within starting_deadline
    FORBID = "forbid"  # skipped: another run of the schedule is running (`concurrency: forbid`)
    TAKEN = "taken"  # nothing recorded: the slot was claimed elsewhere (another process, before a restart)
    COMPLETED = "completed"  # nothing recorded: max_runs reached, the schedule is completed
    CAUGHT_UP = "caught_up"  # missed: summed up in one row by catch-up
    RETRY_LATE = "retry_late"  # missed: a retry found after a restart was due too long ago
    OVERLOAD = "overload"  # missed: this reconciler could not start it in time (its backlog was full, or too slow)
    SHUTDOWN = "shutdown"  # missed: the reconciler stopped while the slot waited to start
    DEPENDENCY = "dependency"  # skipped: a requirement (`requires`) did not hold within starting_deadline
    # Nothing recorded: a newer revision, applied by another replica, removed or changed the
    # schedule; this replica runs an older one (recording would take the slot from the newer).
    SUPERSEDED = "superseded"
    UNREACHABLE = "ledger_unreachable"  # nothing recorded: the ledger could not be reached to claim
    POOL = "pool"  # missed: it waited (queued) for room among the runs at most running at once, past its deadline
    PAUSED = "paused"  # skipped: an operator paused the schedule (`reconciler pause`)
    WINDOW = "window"  # skipped: outside the schedule's windows (`outside: skip`, or no window in time)
    CALENDAR = "calendar"  # skipped: its local date is excluded by a calendar


class FailReason(StrEnum):
    """Why a failed run failed, when a resource limit (`run.limits`) ended it: the error starts with it."""

    MEMORY = "memory"  # over limits.memory (the cgroup's OOM killer, or an allocation refused by RLIMIT_AS)
    CPU_TIME = "cpu_time"  # over limits.cpu_time (SIGXCPU, or SIGKILL at the hard RLIMIT_CPU)


# What a program prints when an allocation is refused (RLIMIT_AS fails the allocation, it kills nothing).
_NO_MEMORY = ("MemoryError", "Cannot allocate memory", "out of memory", "Out of memory", "bad_alloc",
              "memory exhausted", "failed to allocate", "fatal error: runtime: cannot allocate")
SIGKILL, SIGXCPU = 9, 24


def limit_reason(*, exit_code: int, memory_limit: bool, cpu_limit: int | None, oom_kills: int,
                 cpu_used: float | None, output: str) -> FailReason | None:
    """Did a resource limit end a run that failed? `exit_code` as Popen gives it (-N for signal N);
    `oom_kills` from the run's cgroup; `cpu_used` seconds of user + system CPU of its main process."""
    if exit_code == 0:
        return None
    if oom_kills > 0:
        return FailReason.MEMORY
    if cpu_limit is not None and (exit_code == -SIGXCPU or (
            exit_code == -SIGKILL and cpu_used is not None and cpu_used >= cpu_limit)):
        return FailReason.CPU_TIME
    if memory_limit and any(marker in output[-4096:] for marker in _NO_MEMORY):
        return FailReason.MEMORY
    return None


class ScheduleState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # enabled: false
    COMPLETED = "completed"  # max_runs reached, or no slot left


RUN_STATES = tuple(RunStatus)
RETRIED = frozenset((RunStatus.FAILED, RunStatus.TIMED_OUT))  # an attempt that ended so may be retried
FAILING = frozenset((RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED))  # a failure to notify
COUNTED = frozenset((Cause.SCHEDULE, Cause.CATCHUP, Cause.BACKFILL))  # a first attempt of these counts toward max_runs
# The slots of a schedule's own clock, which catch-up starts after: a backfill fills the past, it
# does not move the timeline; manual and upstream runs are not on it.
TIMELINE = frozenset(set(Cause) - {Cause.MANUAL, Cause.BACKFILL, Cause.UPSTREAM})
# What a pause holds back: the timer's slots and what follows from them (retries, and the runs an
# upstream asks for). A manual run is the operator asking explicitly; a backfill leaves a paused
# slot free (not recorded) for later.
PAUSED_CAUSES = frozenset((Cause.SCHEDULE, Cause.CATCHUP, Cause.RETRY, Cause.UPSTREAM))

FORBID = "the previous run is still running (concurrency: forbid)"
# How often a retry of a `forbid` schedule asks again while another run of it is running.
RETRY_POLL = timedelta(milliseconds=500)
_TICK = timedelta(microseconds=1)


# ---- one slot -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A slot (or a retry of it) handed to the runner."""

    cause: Cause
    attempt: int
    fire_time: datetime  # when it was due: a slot's fire time, or when a retry first became due
    shifted: bool = False  # moved to a business day by its calendar: the calendar is not asked again


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim the slot in the ledger, then run it."""

    exclusive: bool  # the ledger refuses it while another run of the schedule is running
    counted: bool  # it counts toward the schedule's started runs (max_runs)
    max_runs: int | None
    replace: bool  # first stop this process's running runs of the schedule


@dataclass(frozen=True, slots=True)
class Pause:
    """An operator's pause of one schedule, as the ledger keeps it: who, when, why, until when."""

    schedule: str
    by: str
    at: datetime
    reason: str = ""
    until: datetime | None = None  # None: until `resume`


def pause_active(pause: Pause | None, now: datetime) -> bool:
    """Is the schedule paused at `now`? A pause with `until` resumes by itself at that instant."""
    return pause is not None and (pause.until is None or now < pause.until)


def pause_message(pause: Pause) -> str:
    """What a paused slot's row says (its `error`), and what `next` and the API show."""
    text = f"paused by {pause.by}"
    if pause.reason:
        text += f": {pause.reason}"
    return text + (f" (until {utc_text(pause.until)})" if pause.until is not None else "")


def skipped_by_pause(pause: Pause | None, slot: datetime) -> str | None:
    """Why an upcoming slot will be skipped by this pause (what `next` and the API show), or None."""
    return pause_message(pause) if pause is not None and pause_active(pause, slot) else None


@dataclass(frozen=True, slots=True)
class Skip:
    """Not run: recorded as `skipped` if `recorded`, else not at all."""

    reason: SkipReason
    message: str = ""
    free: bool = False  # leave the slot unrecorded, so that it may still run later (a backfill)

    @property
    def recorded(self) -> bool:
        return self.reason in RECORDED_SKIPS and not self.free


@dataclass(frozen=True, slots=True)
class Miss:
    """Not run, recorded as `missed` with the message."""

    reason: SkipReason
    message: str


@dataclass(frozen=True, slots=True)
class Queue:
    """Ask again after `delay`; `due` is when the run first became due."""

    delay: timedelta
    due: datetime


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now: dispatch the slot again at `at`, as `request` (a window opens, a business day comes)."""

    at: datetime
    request: Request
    message: str


RECORDED_SKIPS = frozenset((SkipReason.FORBID, SkipReason.PAUSED, SkipReason.WINDOW, SkipReason.CALENDAR,
                            SkipReason.DEPENDENCY))


def decide(schedule: Schedule, request: Request, now: datetime, slot: datetime | None = None, *,
           queued_at: datetime | None = None, full: int | None = None, pause: Pause | None = None,
           parallel: int = 1) -> Claim | Miss | Skip | Defer:
    """Before the claim: run the slot, record it missed or skipped, or defer it. `slot`: the slot's
    identity (its local date is what calendars judge); the fire time when not given. `queued_at`:
    when the runner took the slot in; a slot that was in time then and is late now waited in this
    reconciler's backlog. `full`: the bound on runs at once (--max-running) when it was reached as
    the slot was queued: it waited for room (pool), not for a reconciler too slow to start it
    (overload). `pause`: the schedule's pause in the ledger, if any; `parallel`: a backfill's
    --parallel."""
    p = schedule.policy
    if request.cause in PAUSED_CAUSES | {Cause.BACKFILL} and pause_active(pause, now):
        assert pause is not None
        return Skip(SkipReason.PAUSED, pause_message(pause), free=request.cause == Cause.BACKFILL)
    # Catch-up runs are late by definition; the deadline guards slots the timer delivers, and
    # downstream runs (due when their upstream run ended).
    if request.cause in (Cause.SCHEDULE, Cause.UPSTREAM) and now - request.fire_time > p.starting_deadline:
        late = now - request.fire_time
        if queued_at is not None and queued_at - request.fire_time <= p.starting_deadline and full is not None:
            return Miss(SkipReason.POOL, f"pool: could not start within starting_deadline (late by {late}): "
                                         f"queued {now - queued_at} while all {full} runs this reconciler runs "
                                         f"at once (--max-running) were busy")
        if queued_at is not None and queued_at - request.fire_time <= p.starting_deadline:
            return Miss(SkipReason.OVERLOAD, f"overload: could not start within starting_deadline (late by {late}, "
                                             f"after waiting {now - queued_at} for this reconciler to start it)")
        return Miss(SkipReason.LATE, f"could not start within starting_deadline (late by {late})")
    rules = schedule.rules
    if not rules.empty:
        ruled = time_rules(rules, schedule, request, slot or request.fire_time, now)
        if ruled is not None:
            return ruled
    # `forbid` is the claim's: the database lets one exclusive run of a schedule be running,
    # whichever process, cause or attempt it is (manual runs included).
    # A backfill with --parallel above 1 is the operator's explicit override of `forbid` within
    # the backfill; the daemon's own exclusive claims still wait for its runs.
    exclusive = p.concurrency == "forbid" and not (request.cause == Cause.BACKFILL and parallel > 1)
    return Claim(exclusive=exclusive, counted=counted(request), max_runs=p.max_runs,
                 replace=p.concurrency == "replace" and request.attempt == 1
                 and request.cause not in (Cause.MANUAL, Cause.BACKFILL))


def overflow(waiting: int, bound: int) -> Miss:
    """A slot that arrives while `bound` runs already wait to start: recorded at once, never queued,
    so that the backlog (and the memory it holds) stays bounded."""
    return Miss(SkipReason.OVERLOAD, f"overload: {waiting} runs were already waiting to start (at most {bound})")


def shut_down(request: Request) -> Miss | None:
    """A slot still waiting to start when the reconciler stops: recorded, so that none vanishes. A
    retry is not: the next start resumes it (`resume_retry`), which a row of its own would prevent;
    nor is a backfilled slot, which stays free for the next backfill."""
    if request.cause in (Cause.RETRY, Cause.BACKFILL):
        return None
    return Miss(SkipReason.SHUTDOWN, "the reconciler stopped before it could start this run")


def time_rules(rules: TimeRules, schedule: Schedule, request: Request, slot: datetime,
               now: datetime) -> Skip | Defer | None:
    """Calendars, then windows (docs/policy.md). None: they let the slot run now. A backfill never
    defers (it runs in the operator's command): it runs now, records a calendar skip as the daemon
    would have, or leaves the slot free for a later backfill."""
    backfill = request.cause == Cause.BACKFILL
    # Calendars judge a slot's first attempt; its retries follow where that one ran (a moved slot's too).
    if request.cause in COUNTED and not request.shifted and (rules.exclude or rules.only):
        day = slot.astimezone(schedule.timing.tz).date()
        why = excluded(rules, day)
        if why is not None:
            if shiftable(rules, day):
                target = shifted(rules, slot, schedule.timing.tz)
                if target is not None and schedule.timing.next_slot(target - _TICK) != target:
                    moved = f"{why}: moved to the next business day, {utc_text(target)}"
                    if backfill and target > now:
                        return Skip(SkipReason.CALENDAR, f"{moved}, which is still to come", free=True)
                    if not backfill:
                        return Defer(target, Request(request.cause, request.attempt, target, shifted=True), moved)
                    return _windows(rules, schedule, request, now)  # the moved run, due already: now
                if target is not None:
                    return Skip(SkipReason.CALENDAR, f"{why}; the next business day has a slot of its own")
            return Skip(SkipReason.CALENDAR, why)
    return _windows(rules, schedule, request, now)


def _windows(rules: TimeRules, schedule: Schedule, request: Request, now: datetime) -> Skip | Defer | None:
    # A backfill is an operator's explicit request, as a manual trigger: `manual` decides for both.
    if not rules.windows or (request.cause in (Cause.MANUAL, Cause.BACKFILL) and rules.manual):
        return None
    verdict = judge(rules.windows, now)
    if verdict.allowed:
        return None
    if request.cause == Cause.BACKFILL:
        return Skip(SkipReason.WINDOW, f"window: {verdict.why} (manual: false); the slot stays free for a "
                                       "backfill inside a window", free=True)
    if rules.outside == "defer":
        limit = request.fire_time + schedule.policy.starting_deadline
        opens = next_allowed(rules.windows, now, limit)
        if opens is not None:
            return Defer(opens, request, f"window: {verdict.why}: deferred to {utc_text(opens)}")
        return Skip(SkipReason.WINDOW, f"window: {verdict.why}, and no window opens within starting_deadline")
    return Skip(SkipReason.WINDOW, f"window: {verdict.why}")


def slot_note(schedule: Schedule, slot: datetime) -> str:
    """What the time rules do to a future slot, as `next`, `plan` and the API show it: "" when it
    runs as is; "skipped: calendar de-by-holidays (Christmas Day)"; "moved to ...". Windows are
    judged at the slot's fire time."""
    rules = schedule.rules
    if rules.empty:
        return ""
    request = Request(Cause.SCHEDULE, 1, schedule.timing.fire_time(slot))
    ruled = time_rules(rules, schedule, request, slot, request.fire_time)
    if ruled is None:
        return ""
    if isinstance(ruled, Skip):
        return f"skipped: {ruled.message}"
    if ruled.request.shifted:
        again = time_rules(rules, schedule, ruled.request, slot, ruled.at)
        if isinstance(again, Skip):
            return f"moved to {local_text(ruled.at, schedule.timing)} and then skipped: {again.message}"
        return f"moved to {local_text(again.at if again else ruled.at, schedule.timing)} " \
               f"({ruled.message.split(':')[0]})"
    return f"deferred to {local_text(ruled.at, schedule.timing)} (window)"


def backfill_note(schedule: Schedule, slot: datetime, now: datetime) -> str:
    """What the calendar did to a backfilled slot that runs ("" when nothing): a slot moved to a
    business day that has passed runs now, under its own key."""
    rules = schedule.rules
    if rules.empty or not (rules.exclude or rules.only):
        return ""
    day = slot.astimezone(schedule.timing.tz).date()
    why = excluded(rules, day)
    target = shifted(rules, slot, schedule.timing.tz) if why is not None and shiftable(rules, day) else None
    if why is None or target is None or target > now:
        return ""
    return f"{why}: moved to the next business day, {utc_text(target)}"


def counted(request: Request) -> bool:
    """A first attempt of a scheduled slot counts toward max_runs; manual runs and retries do not."""
    return request.attempt == 1 and request.cause in COUNTED


def refused(schedule: Schedule, request: Request, now: datetime, *, started: int, blocked: bool) -> Skip | Queue:
    """After the ledger refused the claim. `started`: the schedule's counted runs; `blocked`:
    another running run of the schedule was in the way (else the slot was claimed already)."""
    p = schedule.policy
    if completed(p.max_runs, started):
        return Skip(SkipReason.COMPLETED, f"max_runs {p.max_runs} reached")
    if not blocked:
        return Skip(SkipReason.TAKEN)
    if request.cause == Cause.BACKFILL:
        # A backfill waits for the running run instead: a recorded skip would take its slot for good.
        return Queue(RETRY_POLL, request.fire_time)
    if request.cause == Cause.RETRY and now - request.fire_time <= p.starting_deadline:
        # A retry is owed to its slot: it waits for the running run, up to starting_deadline.
        return Queue(RETRY_POLL, request.fire_time)
    return Skip(SkipReason.FORBID, FORBID)


def superseded(newest: str) -> Skip:
    """The ledger refused the claim: a newer revision removed or changed the schedule. Not
    recorded (the slot's key stays free for the replicas on the newer revision), not retried."""
    return Skip(SkipReason.SUPERSEDED, f"a newer revision ({newest}) applied by another replica removed or "
                                       "changed this schedule")


def needs_started(schedule: Schedule) -> bool:
    """Does `refused` need the schedule's started count? (Only max_runs reads it: no query otherwise.)"""
    return schedule.policy.max_runs is not None


def completed(max_runs: int | None, started: int) -> bool:
    return max_runs is not None and started >= max_runs


# ---- pools (issue 18) -------------------------------------------------------------------------------

# How often a queued slot of a pool asks again on its own (a run that ends on this reconciler asks
# at once): another replica's run may have freed room.
POOL_POLL = timedelta(milliseconds=500)
# Late by definition: a catch-up or a backfill waits for room from when it first found none.
_POOL_SINCE = frozenset((Cause.CATCHUP, Cause.BACKFILL))


def pool_wait(schedule: Schedule, request: Request, now: datetime, *, since: datetime, size: int) -> Queue | Miss:
    """A slot without room in its pool (the claim found `size` runs of it running, on any
    replica): `queued`, not lost, and asked again until starting_deadline after it was due (after
    `since`, when it first found the pool full, for a catch-up); then recorded `missed` with
    reason `pool`. A backfill waits for room as long as it takes (its operator waits for it)."""
    pool = schedule.policy.pool
    due = since if request.cause in _POOL_SINCE else request.fire_time
    if request.cause == Cause.BACKFILL or now - due <= schedule.policy.starting_deadline:
        return Queue(POOL_POLL, due)
    return Miss(SkipReason.POOL, f"pool {pool}: could not start within starting_deadline (late by {now - due}): "
                                 f"queued {now - since} while all {size} runs of pool {pool!r} were running "
                                 "(across every replica)")


def pool_order(schedule: Schedule, slot: datetime) -> tuple[int, datetime]:
    """Queued slots of a pool start in this order: higher `priority` first, then the earlier slot."""
    return -schedule.policy.priority, slot


# ---- dependencies (issue 18) ------------------------------------------------------------------------

# The statuses a run ends with on its own: what `on` and `requires` read. Skipped, missed, cancelled
# and interrupted runs did not run to an end, and say nothing about a schedule's work.
ENDED = frozenset((RunStatus.SUCCEEDED, *FAILING))
_ON: dict[str, frozenset[RunStatus]] = {"success": frozenset((RunStatus.SUCCEEDED,)), "failure": FAILING,
                                        "finished": ENDED}
_REQUIRED: dict[str, frozenset[RunStatus]] = {"succeeded": _ON["success"], "failed": FAILING, "finished": ENDED}
GATED = frozenset((Cause.SCHEDULE, Cause.CATCHUP, Cause.UPSTREAM))  # retries and manual runs are never gated
DEPENDENCY = "dependency: "  # how the error of a slot skipped by `requires` begins
GATE_POLL = timedelta(seconds=1)  # how often a gated slot asks again, within its starting_deadline


@dataclass(frozen=True, slots=True)
class Ended:
    """A schedule's newest run that ran to an end (ENDED), as `requires` reads it."""

    status: RunStatus
    finished_at: datetime


def matches_on(on: str, status: RunStatus | None) -> bool:
    return status is not None and status in _ON[on]


def triggers(downstream: Schedule, upstream: str, status: RunStatus, is_final: bool,
             slot_outcomes: Mapping[str, RunStatus | None]) -> bool:
    """Does this final outcome of `upstream` start `downstream` for the same slot? With `all`,
    every upstream must have ended matching `on` for that slot (`slot_outcomes`: each upstream's
    final status for it, None if it has none yet); otherwise this one suffices."""
    d = downstream.deps
    if not downstream.enabled or upstream not in d.after or not is_final or not matches_on(d.on, status):
        return False
    if not d.all:
        return True
    return all(u == upstream or matches_on(d.on, slot_outcomes.get(u)) for u in d.after)


def gate(schedule: Schedule, request: Request, now: datetime, ended: Mapping[str, Ended | None]) -> Skip | Queue | None:
    """`requires`: None when the slot may run; else wait (up to starting_deadline from when it was
    due), then skip it (recorded, with a `missed` notification). `ended`: each required schedule's
    newest ended run (`self` under the schedule's own name). A schedule that has never ended a run
    does not hold a requirement, except `self`: a new schedule starts. A manual run is never gated,
    so `reconciler trigger` is how a person resets a `requires: self` that a failure closed."""
    reqs = schedule.deps.requires
    if not reqs or request.cause not in GATED:
        return None
    why = [w for r in reqs if (w := _unmet(schedule.name, r.schedule, r.status, r.within, ended, now))]
    if not why:
        return None
    if now - request.fire_time <= schedule.policy.starting_deadline:
        return Queue(GATE_POLL, request.fire_time)
    return Skip(SkipReason.DEPENDENCY, DEPENDENCY + "; ".join(why))


def required_names(schedule: Schedule) -> tuple[str, ...]:
    """The schedules whose newest ended run `gate` needs (the schedule's own name for `self`)."""
    return tuple(dict.fromkeys(schedule.name if r.schedule == SELF else r.schedule for r in schedule.deps.requires))


def _unmet(name: str, required: str, status: str, within: timedelta | None, ended: Mapping[str, Ended | None],
           now: datetime) -> str | None:
    own = required == SELF
    last = ended.get(name if own else required)
    who = "its own last run" if own else f"the last run of {required!r}"
    if last is None:
        return None if own else f"{required!r} has no ended run (requires {status})"
    if last.status not in _REQUIRED[status]:
        return f"{who} {last.status} (requires {status})"
    if within is not None and now - last.finished_at > within:
        return f"{who} ended at {utc_text(last.finished_at)}, longer ago than {format_duration(within)}"
    return None


def gated(error: str | None) -> bool:
    """Was a skipped slot skipped by `requires`?"""
    return error is not None and error.startswith(DEPENDENCY)


# ---- retries ---------------------------------------------------------------------------------------


def should_retry(retries: Retries, status: RunStatus, attempt: int) -> bool:
    """Does another attempt follow an attempt that ended so?"""
    return status in RETRIED and attempt <= retries.limit


def retry_delay(retries: Retries, status: RunStatus, attempt: int) -> timedelta | None:
    """How long after this attempt the next one starts, or None when none follows."""
    return retries.delay_before(attempt + 1) if should_retry(retries, status, attempt) else None


def resume_retry(schedule: Schedule, status: RunStatus, attempt: int, finished_at: datetime,
                 now: datetime) -> Queue | Miss | None:
    """A slot's newest attempt found at start-up: its retry is queued for when its backoff ends,
    or, if that moment is further back than starting_deadline, recorded missed (reported once,
    not at every restart). None: no retry follows it."""
    if not should_retry(schedule.policy.retries, status, attempt):
        return None
    due = finished_at + schedule.policy.retries.delay_before(attempt + 1)
    if now - due > schedule.policy.starting_deadline:
        return Miss(SkipReason.RETRY_LATE, f"its retry was due at {utc_text(due)}, longer ago than starting_deadline")
    return Queue(max(due - now, timedelta(0)), due)


def retries_owed(schedule: Schedule) -> bool:
    """Can a retry of this schedule be pending from before a restart?"""
    return schedule.enabled and schedule.policy.retries.limit > 0


# ---- catch-up ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatchUp:
    summed: int  # slots summed up in one `missed` row at `summary_slot` (0: no row)
    summary_slot: datetime
    message: str
    run: datetime | None  # the slot run once, as `catchup`


def catches_up(schedule: Schedule) -> bool:
    return schedule.enabled


def catch_up(schedule: Schedule, missed: Missed, during: str) -> CatchUp:
    """`none`: one `missed` row sums the slots up. `latest`: the most recent of them runs once (as
    `catchup`), and the older ones are summed up. Never a stampede."""
    catchup = schedule.policy.catchup
    run_latest = catchup == "latest"
    summed = missed.count - (1 if run_latest else 0)
    more = "+" if missed.capped else ""
    message = (f"{summed}{more} slot(s) missed {during} "
               f"({utc_text(missed.first)} .. {utc_text(missed.latest)}); catchup: {catchup}")
    return CatchUp(summed, missed.before_latest if run_latest else missed.latest, message,
                   missed.latest if run_latest else None)


# ---- notifications -------------------------------------------------------------------------------------


def final(retries: Retries, status: RunStatus, attempt: int) -> bool:
    """Is this the last word on its slot? (A failed attempt that will be retried is not.)"""
    return not should_retry(retries, status, attempt)


def still_failing(was_failing: bool, status: RunStatus) -> bool:
    """The failing streak after a final outcome: a failure starts it, a success ends it."""
    if status in FAILING:
        return True
    return False if status == RunStatus.SUCCEEDED else was_failing


def events_for(status: RunStatus, was_failing: bool, error: str | None = None) -> set[str]:
    """The events one final outcome raises, given whether the schedule was in a failing streak."""
    if status in FAILING:
        return {"failure", "failure-repeat"} if was_failing else {"failure"}
    if status == RunStatus.SUCCEEDED:
        return {"success", "recovery"} if was_failing else {"success"}
    if status == RunStatus.MISSED or (status == RunStatus.SKIPPED and gated(error)):
        return {"missed"}
    return set()


def wanted(target: Notify, events: Collection[str]) -> str | None:
    """The event this target is told about, if any (a failing streak is told once by default)."""
    for event in ("recovery", "failure", "missed", "success"):
        if event not in events or event not in target.events:
            continue
        if event == "failure" and "failure-repeat" in events and not target.every_failure:
            continue
        return event
    return None


# ---- what a schedule is now ------------------------------------------------------------------------------


def schedule_state(enabled: bool, completed: bool, next_fire: datetime | None, *,
                   triggered: bool = False) -> ScheduleState:
    """`triggered`: a schedule `after` others has no fire time of its own, and is active while enabled."""
    if not enabled:
        return ScheduleState.SUSPENDED
    if completed or (next_fire is None and not triggered):
        return ScheduleState.COMPLETED
    return ScheduleState.ACTIVE


# What the overview lists as recent failures.
LISTED_FAILURES = (RunStatus.FAILED, RunStatus.TIMED_OUT)
