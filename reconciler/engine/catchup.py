"""After downtime: what the ledger says ran last, against what should have run since."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from reconciler.core.describe import utc_text
from reconciler.core.model import Schedule
from reconciler.core.timing import missed_slots
from reconciler.ledger.base import Ledger, Outcome, RunRecord

RetryLater = Callable[[str, datetime, int, timedelta], None]  # name, slot, attempt, delay


def catch_up(ledger: Ledger, schedules: Mapping[str, Schedule], revision: str, now: datetime,
             dispatch: Callable[..., None], log: Callable[..., None]) -> int:
    """`none`: one `missed` row sums the gap up. `latest`: the most recent missed slot runs once
    (as `catchup`), and the older ones are summed up. Never a stampede. Returns slots missed."""
    total = 0
    lasts = ledger.last_slots()
    for name, s in sorted(schedules.items()):
        last = lasts.get(name)
        if not s.enabled or last is None:
            continue  # a schedule without history has nothing to catch up on
        missed = missed_slots(s.timing, last, now)
        if missed is None:
            continue
        total += missed.count
        run_latest = s.policy.catchup == "latest"
        summed = missed.count - (1 if run_latest else 0)
        if summed:
            more = "+" if missed.capped else ""
            why = (f"{summed}{more} slot(s) missed while no reconciler was running "
                   f"({utc_text(missed.first)} .. {utc_text(missed.latest)}); catchup: {s.policy.catchup}")
            slot = missed.before_latest if run_latest else missed.latest
            ledger.record(name, slot, attempt=1, trigger="catchup", revision=revision,
                          outcome=Outcome("missed", now, error=why))
            log("run.missed", schedule=name, slot=utc_text(slot), missed=summed, trigger="catchup", revision=revision)
        if run_latest:
            dispatch(name, missed.latest, missed.latest, trigger="catchup")
    return total


def resume_retries(last_runs: Mapping[str, RunRecord], schedules: Mapping[str, Schedule], now: datetime,
                   retry: RetryLater, log: Callable[..., None]) -> int:
    """Retries that were pending when the last reconciler stopped: a slot whose newest attempt
    failed with attempts left is retried when its backoff ends, unless that moment is further in
    the past than the schedule's starting_deadline (then it is not made up, like a late slot).
    Returns how many were resumed."""
    resumed = 0
    for name, last in sorted(last_runs.items()):
        s = schedules.get(name)
        if s is None or not s.enabled or last.finished_at is None:
            continue
        if not s.policy.retries.follow(last.status, last.attempt):
            continue
        attempt = last.attempt + 1
        due = last.finished_at + s.policy.retries.delay_before(attempt)
        if now - due > s.policy.starting_deadline:
            log("run.retry_dropped", schedule=name, slot=utc_text(last.slot), attempt=attempt,
                reason=f"its retry was due at {utc_text(due)}, longer ago than starting_deadline")
            continue
        retry(name, last.slot, attempt, max(due - now, timedelta(0)))
        log("run.retry_resumed", schedule=name, slot=utc_text(last.slot), attempt=attempt, due=utc_text(due))
        resumed += 1
    return resumed
