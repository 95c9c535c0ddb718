"""Slots that passed without being fired, and retries that were owed: one rule for each (in
core/policy.py), whether the reconciler was stopped (a restart) or its timer fell behind (a forward
clock step, a suspended machine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta

from reconciler.core import policy
from reconciler.core.describe import utc_text
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Miss, RunStatus
from reconciler.core.timing import Missed, Timing, missed_slots
from reconciler.engine.trigger import latest_slot
from reconciler.ledger.base import Ledger, LedgerFull, Outcome

RetryLater = Callable[[str, datetime, int, timedelta], None]  # name, slot, attempt, delay

RESTART = "while no reconciler was running"
BEHIND = "while the timer was behind (a forward clock step, or a suspended or stalled process)"
_TICK = timedelta(microseconds=1)


def catch_up(ledger: Ledger, schedules: Mapping[str, Schedule], revision: str, now: datetime,
             dispatch: Callable[..., None], log: Callable[..., None]) -> int:
    """After a restart, for every schedule with history: the slots after its last recorded one and
    before `now`, by its catch-up policy (see `make_up`). Returns slots missed."""
    total = 0
    lasts = ledger.last_slots(policy.TIMELINE)
    for name, s in sorted(schedules.items()):
        last = lasts.get(name)
        if not policy.catches_up(s) or last is None:
            continue  # a schedule without history has nothing to catch up on
        total += make_up(ledger, name, s, gap(s.timing, last, now), revision, now, dispatch, log, RESTART)
    return total


def gap(timing: Timing, last: datetime, until: datetime, limit: int = 1_000_000) -> Missed | None:
    """The slots after `last` and before `until`. Counting stops at `limit`, but the latest slot
    (the one `catchup: latest` runs) is the true latest even then."""
    missed = missed_slots(timing, last, until, limit)
    if missed is None or not missed.capped:
        return missed
    latest = latest_slot(timing, missed.latest, until - _TICK)
    if latest is None:
        return missed
    before = latest_slot(timing, missed.latest, latest - _TICK) or missed.latest
    return Missed(missed.count, missed.first, latest, before, capped=True)


def make_up(ledger: Ledger, name: str, s: Schedule, missed: Missed | None, revision: str, now: datetime,
            dispatch: Callable[..., None], log: Callable[..., None], during: str) -> int:
    """Record and run what the catch-up policy says of the slots in `missed`. Returns how many were
    missed."""
    if missed is None:
        return 0
    plan = policy.catch_up(s, missed, during)
    if plan.summed:
        with suppress(LedgerFull):  # reported once by the ledger; the slots were missed all the same
            ledger.record(name, plan.summary_slot, attempt=1, cause=Cause.CATCHUP, revision=revision,
                          outcome=Outcome(RunStatus.MISSED, now, error=plan.message))
        log("run.missed", schedule=name, slot=utc_text(plan.summary_slot), missed=plan.summed, trigger=Cause.CATCHUP,
            revision=revision, cause=during)
    if plan.run is not None:
        dispatch(name, plan.run, plan.run, cause=Cause.CATCHUP)
    return missed.count


def resume_retries(ledger: Ledger, schedules: Mapping[str, Schedule], revision: str, now: datetime,
                   retry: RetryLater, log: Callable[..., None]) -> int:
    """Retries that were pending when the last reconciler stopped (see policy.resume_retry).
    Returns how many were resumed."""
    wanted = [name for name, s in schedules.items() if policy.retries_owed(s)]
    resumed = 0
    for last in ledger.last_attempts(policy.RETRIED, wanted):
        if last.finished_at is None:
            continue
        name, attempt = last.schedule, last.attempt + 1
        decision = policy.resume_retry(schedules[name], last.status, last.attempt, last.finished_at, now)
        if decision is None:
            continue
        if isinstance(decision, Miss):
            with suppress(LedgerFull):  # reported once by the ledger; found again at the next start
                ledger.record(name, last.slot, attempt=attempt, cause=Cause.RETRY, revision=revision,
                              outcome=Outcome(RunStatus.MISSED, now, error=decision.message))
            log("run.retry_dropped", schedule=name, slot=utc_text(last.slot), attempt=attempt, reason=decision.message)
            continue
        retry(name, last.slot, attempt, decision.delay)
        log("run.retry_resumed", schedule=name, slot=utc_text(last.slot), attempt=attempt, due=utc_text(decision.due))
        resumed += 1
    return resumed
