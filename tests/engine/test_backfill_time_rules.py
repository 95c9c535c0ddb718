"""A backfill's plan says what windows and calendars do to each slot, and the real backfill does
exactly that: in-process, over a real SQLite ledger and runner, with an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.engine.backfill import Slot, plan, run
from reconciler.engine.runner import Runner
from reconciler.ledger.sqlite import SqliteLedger
from tests.core.test_calendars import HOLIDAYS, WEEKEND, sched, slot, w


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def backfill(ledger: SqliteLedger, s: Schedule, first: datetime, last: datetime, now: datetime) -> list[Slot]:
    """A dry run, then the real backfill at the same instant: both plans, side by side."""
    dry = plan(ledger, s, first, last, now)
    real = plan(ledger, s, first, last, now)
    r = Runner(ledger, log=lambda *a, **k: None, clock=lambda: now, environ={"PATH": "/usr/bin:/bin"})
    r.update({"job": s}, "rev-1")
    try:
        run(ledger, "job", real, 1, r.backfill)
    finally:
        r.shutdown(5)
    assert [(p.slot, p.plan, p.detail) for p in real] == [(p.slot, p.plan, p.detail) for p in dry]
    return real


def test_holidays_in_a_backfill_are_listed_skipped_and_recorded_so_and_the_other_slots_run(
        ledger: SqliteLedger) -> None:
    s = sched(exclude=(HOLIDAYS,))  # 02:00 Berlin daily
    done = backfill(ledger, s, slot("2026-12-23T00:00"), slot("2026-12-28T00:00"), slot("2027-01-05T12:00"))
    assert [(p.slot, p.plan, p.detail) for p in done] == [
        (slot("2026-12-23T02:00"), "run", ""),
        (slot("2026-12-24T02:00"), "run", ""),
        (slot("2026-12-25T02:00"), "skipped", "calendar de-by-holidays (Christmas Day)"),
        (slot("2026-12-26T02:00"), "skipped", "calendar de-by-holidays (Second Day of Christmas)"),
        (slot("2026-12-27T02:00"), "run", "")]
    rows = {x.slot: x for x in ledger.runs("job")}
    assert {x.cause for x in rows.values()} == {Cause.BACKFILL}
    for p in done:
        assert p.run_id == rows[p.slot].id
        assert p.status == rows[p.slot].status == (RunStatus.SKIPPED if p.plan == "skipped" else RunStatus.SUCCEEDED)
    assert rows[slot("2026-12-25T02:00")].error == "calendar de-by-holidays (Christmas Day)"
    again = plan(ledger, s, slot("2026-12-23T00:00"), slot("2026-12-28T00:00"), slot("2027-01-05T12:00"))
    assert {p.plan for p in again} == {"ran"}


def test_with_manual_false_a_backfill_outside_the_windows_runs_nothing_and_records_nothing(
        ledger: SqliteLedger) -> None:
    s = sched(windows=(w("allow", "0 1 * * *", "4h"),), manual=False)
    done = backfill(ledger, s, slot("2026-03-02T00:00"), slot("2026-03-04T00:00"), slot("2026-03-05T12:00"))
    assert [p.plan for p in done] == ["held", "held"]
    assert all(p.detail.startswith("window: outside every allow window") for p in done)
    assert ledger.runs("job") == []
    # Inside the window the same backfill runs them.
    inside = backfill(ledger, s, slot("2026-03-02T00:00"), slot("2026-03-04T00:00"), slot("2026-03-06T02:00"))
    assert [(p.plan, p.status) for p in inside] == [("run", RunStatus.SUCCEEDED)] * 2


def test_by_default_a_backfill_runs_outside_the_windows_as_a_manual_trigger_does(ledger: SqliteLedger) -> None:
    s = sched(windows=(w("deny", "0 0 * * *", "24h"),))
    done = backfill(ledger, s, slot("2026-03-02T00:00"), slot("2026-03-04T00:00"), slot("2026-03-05T12:00"))
    assert [(p.plan, p.status) for p in done] == [("run", RunStatus.SUCCEEDED)] * 2


def test_a_slot_moved_to_a_passed_business_day_runs_under_its_own_key_and_one_still_to_come_waits(
        ledger: SqliteLedger) -> None:
    s = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    first, last = slot("2026-12-01T00:00"), slot("2026-12-27T00:00")
    early = backfill(ledger, s, first, last, slot("2026-12-27T12:00"))
    assert [(p.plan, p.detail) for p in early] == [
        ("held", "calendar de-by-holidays (Christmas Day): moved to the next business day, 2026-12-28T01:00:00Z, "
                 "which is still to come")]
    assert ledger.runs("job") == []
    later = backfill(ledger, s, first, last, slot("2026-12-29T12:00"))
    assert [(p.plan, p.detail, p.status) for p in later] == [
        ("run", "calendar de-by-holidays (Christmas Day): moved to the next business day, 2026-12-28T01:00:00Z",
         RunStatus.SUCCEEDED)]
    (row,) = ledger.runs("job")
    assert (row.slot, row.cause) == (slot("2026-12-25T02:00"), Cause.BACKFILL)
