"""The runner and pauses: the ledger's pauses, read through a short cache, decide each slot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.core.policy import Cause, Pause, Request, RunStatus
from reconciler.engine.pauses import Pauses
from reconciler.engine.runner import Runner
from reconciler.ledger.sqlite import SqliteLedger

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


class Counting:
    """A ledger whose pause reads are counted."""

    def __init__(self, ledger: SqliteLedger) -> None:
        self.ledger, self.reads = ledger, 0

    def pauses(self) -> dict[str, Pause]:
        self.reads += 1
        return self.ledger.pauses()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_the_pauses_are_read_from_the_ledger_at_most_once_per_ttl(ledger: SqliteLedger) -> None:
    counting, tick = Counting(ledger), [0.0]
    cache = Pauses(counting, clock=lambda: NOW, log=lambda *a, **k: None,
                   ttl=timedelta(seconds=1), monotonic=lambda: tick[0])
    assert cache.get("a") is None
    ledger.pause(Pause("a", "alice", NOW, "why"))
    for _ in range(100):
        assert cache.get("a") is None  # within the TTL: the old view, and no query
    assert counting.reads == 1
    tick[0] = 1.0
    assert cache.get("a") == Pause("a", "alice", NOW, "why")
    assert counting.reads == 2
    cache.forget()
    ledger.resume("a")
    assert cache.get("a") is None


def test_a_ledger_that_cannot_be_read_keeps_the_last_view_and_is_logged(ledger: SqliteLedger) -> None:
    logged: list[str] = []
    tick = [0.0]
    ledger.pause(Pause("a", "alice", NOW, "why"))
    cache = Pauses(ledger, clock=lambda: NOW, log=lambda event, **_: logged.append(event),
                   monotonic=lambda: tick[0])
    assert cache.get("a") is not None
    ledger.close()
    tick[0] = 5.0
    assert cache.get("a") is not None
    assert logged == ["pauses.unreadable"]


def test_a_paused_slot_is_recorded_skipped_and_a_manual_run_still_runs(ledger: SqliteLedger, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (s,) = Loader().load_bytes("s.yaml", (
        f"name: a\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'echo x >> {marker}']}}\n").encode(),
        NOW).schedules
    ledger.pause(Pause("a", "alice", NOW - timedelta(minutes=1), "db migration"))
    r = Runner(ledger, log=lambda *a, **k: None, environ={"PATH": "/usr/bin:/bin"})
    r.update({"a": s}, "rev-1")
    try:
        assert r._run("a", NOW, Request(Cause.SCHEDULE, 1, NOW)) is not None
        manual = r.run_now("a")
    finally:
        r.shutdown(5)
    skipped, ran = sorted(ledger.runs("a"), key=lambda x: x.id)
    assert (skipped.status, skipped.error) == (RunStatus.SKIPPED, "paused by alice: db migration")
    assert (ran.id, ran.cause, ran.status) == (manual, Cause.MANUAL, RunStatus.SUCCEEDED)
    assert marker.read_text() == "x\n"



def test_a_backfill_of_a_forbid_schedule_waits_for_the_running_run_then_runs_its_slot(ledger: SqliteLedger) -> None:
    import threading

    from reconciler.ledger.base import Outcome

    (s,) = Loader().load_bytes("s.yaml", b"name: a\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n",
                               NOW).schedules
    holder = ledger.claim("a", NOW, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=NOW, owner="other",
                          exclusive=True, lease=timedelta(minutes=5))
    assert holder is not None
    r = Runner(ledger, log=lambda *a, **k: None, environ={"PATH": "/usr/bin:/bin"})
    r.update({"a": s}, "rev-1")
    result: list[int | None] = []
    worker = threading.Thread(target=lambda: result.append(r.backfill("a", NOW - timedelta(hours=1))))
    worker.start()
    try:
        worker.join(timeout=1.5)  # a few polls: the backfill is still waiting
        assert worker.is_alive()
        assert [x.id for x in ledger.runs("a")] == [holder]  # nothing recorded for the held slot
        ledger.finish(holder, Outcome(RunStatus.SUCCEEDED, NOW))
        worker.join(timeout=15)
    finally:
        r.shutdown(5)
    assert len(result) == 1
    assert result[0] is not None
    ran = ledger.run(result[0])
    assert ran is not None
    assert (ran.cause, ran.status, ran.slot) == (Cause.BACKFILL, RunStatus.SUCCEEDED, NOW - timedelta(hours=1))
