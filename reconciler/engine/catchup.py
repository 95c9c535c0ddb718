"""Slots that passed without being fired, and retries that were owed: one rule for each, whether
the reconciler was stopped (a restart) or its timer fell behind (a forward clock step, a suspended
machine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta

from reconciler.core.describe import utc_text
from reconciler.core.model import Retries, Schedule
from reconciler.core.timing import Missed, Timing, missed_slots
from reconciler.engine.trigger import latest_slot
from reconciler.ledger.base import RUN_STATES, Ledger, LedgerFull, Outcome

RetryLater = Callable[[str, datetime, int, timedelta], None]  # name, slot, attempt, delay

RESTART = "while no reconciler was running"
BEHIND = "while the timer was behind (a forward clock step, or a suspended or stalled process)"
_TICK = timedelta(microseconds=1)
# The statuses a retry follows, asked of the policy itself so that the rule lives there.
_RETRIED = tuple(status for status in RUN_STATES if Retries(limit=1).follow(status, 1))


def catch_up(ledger: Ledger, schedules: Mapping[str, Schedule], revision: str, now: datetime,
             dispatch: Callable[..., None], log: Callable[..., None]) -> int:
    """After a restart, for every schedule with history: the slots after its last recorded one and
    before `now`, by its catch-up policy (see `make_up`). Returns slots missed."""
    total = 0
    lasts = ledger.last_slots()
    for name, s in sorted(schedules.items()):
        last = lasts.get(name)
        if not s.enabled or last is None:
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
            dispatch: Callable[..., None], log: Callable[..., None], cause: str) -> int:
    """`none`: one `missed` row sums the slots up. `latest`: the most recent of them runs once (as
    `catchup`), and the older ones are summed up. Never a stampede. Returns how many were missed."""
    if missed is None:
        return 0
    run_latest = s.policy.catchup == "latest"
    summed = missed.count - (1 if run_latest else 0)
    if summed:
        more = "+" if missed.capped else ""
        why = (f"{summed}{more} slot(s) missed {cause} "
               f"({utc_text(missed.first)} .. {utc_text(missed.latest)}); catchup: {s.policy.catchup}")
        slot = missed.before_latest if run_latest else missed.latest
        with suppress(LedgerFull):  # reported once by the ledger; the slots were missed all the same
            ledger.record(name, slot, attempt=1, trigger="catchup", revision=revision,
                          outcome=Outcome("missed", now, error=why))
        log("run.missed", schedule=name, slot=utc_text(slot), missed=summed, trigger="catchup", revision=revision,
            cause=cause)
    if run_latest:
        dispatch(name, missed.latest, missed.latest, trigger="catchup")
    return missed.count


def resume_retries(ledger: Ledger, schedules: Mapping[str, Schedule], revision: str, now: datetime,
                   retry: RetryLater, log: Callable[..., None]) -> int:
    """Retries that were pending when the last reconciler stopped: every slot whose newest attempt
    failed with attempts left is retried when its backoff ends, unless that moment is further in
    the past than the schedule's starting_deadline. Such a retry is not made up, like a late slot:
    it is recorded `missed` (so that it is reported once, not at every restart).
    Returns how many were resumed."""
    wanted = [name for name, s in schedules.items() if s.enabled and s.policy.retries.limit]
    resumed = 0
    for last in ledger.last_attempts(_RETRIED, wanted):
        s = schedules[last.schedule]
        if last.finished_at is None or not s.policy.retries.follow(last.status, last.attempt):
            continue
        name, attempt = last.schedule, last.attempt + 1
        due = last.finished_at + s.policy.retries.delay_before(attempt)
        if now - due > s.policy.starting_deadline:
            why = f"its retry was due at {utc_text(due)}, longer ago than starting_deadline"
            with suppress(LedgerFull):  # reported once by the ledger; found again at the next start
                ledger.record(name, last.slot, attempt=attempt, trigger="retry", revision=revision,
                              outcome=Outcome("missed", now, error=why))
            log("run.retry_dropped", schedule=name, slot=utc_text(last.slot), attempt=attempt, reason=why)
            continue
        retry(name, last.slot, attempt, max(due - now, timedelta(0)))
        log("run.retry_resumed", schedule=name, slot=utc_text(last.slot), attempt=attempt, due=utc_text(due))
        resumed += 1
    return resumed
