"""`on_excluded: next_business_day` through the runner: an excluded slot is deferred to the same
wall time on the next business day and runs then, under its own slot. A real runner, ledger and
timer thread; the clock is injected so that the three days between fit in a second."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.engine.runner import Runner
from reconciler.ledger.sqlite import SqliteLedger
from tests.core.test_calendars import HOLIDAYS, WEEKEND, sched, slot
from tests.harness import wait_for


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def test_an_excluded_slot_runs_on_the_next_business_day_at_its_wall_time_under_its_own_slot(
        ledger: SqliteLedger) -> None:
    # Friday 25 December is Christmas, the 26th a holiday, the 27th a Sunday: Monday the 28th.
    s = sched(cron="0 2 25 12 *", deadline="4d", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    christmas, monday = slot("2026-12-25T02:00"), slot("2026-12-28T02:00")
    now = [monday - timedelta(seconds=1)]  # the slot reaches the runner late, within its deadline
    deferred = threading.Event()
    events: list[tuple[str, dict[str, Any]]] = []

    def log(event: str, **fields: Any) -> None:
        events.append((event, fields))
        if event == "run.deferred":
            deferred.set()

    r = Runner(ledger, log=log, clock=lambda: now[0], environ={"PATH": "/usr/bin:/bin"})
    r.update({"job": s}, "rev-1")
    try:
        r.dispatch("job", christmas)
        assert deferred.wait(10)
        assert ledger.runs("job") == []  # nothing recorded while it waits for Monday
        now[0] = monday  # the timer (1 s) fires on Monday, by this clock
        wait_for(lambda: [x.status for x in ledger.runs("job")] == [RunStatus.SUCCEEDED], timeout=15,
                 what="the moved run")
    finally:
        r.shutdown(5)
    (row,) = ledger.runs("job")
    assert (row.slot, row.cause, row.started_at) == (christmas, Cause.SCHEDULE, monday)
    (_, fields), = [e for e in events if e[0] == "run.deferred"]
    assert fields["until"] == "2026-12-28T01:00:00Z"
    assert fields["reason"] == "calendar de-by-holidays (Christmas Day): moved to the next business day, " \
                               "2026-12-28T01:00:00Z"
