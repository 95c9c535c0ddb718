"""The runner's backlog in-process: a slot that waited for a worker past its deadline is missed for
overload (not `late`), and one that arrives at a full backlog is recorded at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import RunStatus
from reconciler.engine.runner import Runner
from reconciler.ledger.sqlite import SqliteLedger
from tests.harness import wait_for


def schedule(name: str, seconds: str) -> Schedule:
    text = (f"name: {name}\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sleep, '{seconds}']}}\n"
            "policy: {starting_deadline: 1s}\n")
    (s,) = Loader().load_bytes(f"{name}.yaml", text.encode(), datetime.now(UTC)).schedules
    return s


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def test_a_slot_that_waited_for_room_past_its_deadline_is_missed_for_pool(ledger: SqliteLedger) -> None:
    logs = Logs()
    runner = Runner(ledger, log=logs, environ={"PATH": "/usr/bin:/bin"}, max_workers=1)
    busy, waiting = schedule("busy", "2.5"), schedule("waiting", "0")
    runner.update({s.name: s for s in (busy, waiting)}, "rev")
    now = datetime.now(UTC)
    runner.dispatch("busy", now)
    wait_for(lambda: runner.running("busy") == 1, what="the only worker to be busy")
    runner.dispatch("waiting", datetime.now(UTC))
    assert runner.waiting() == 1
    wait_for(lambda: ledger.runs("waiting"), timeout=10, what="the waiting slot's row")
    (row,) = ledger.runs("waiting")
    assert row.status == RunStatus.MISSED
    assert row.error is not None
    assert row.error.startswith("pool: could not start within starting_deadline")
    assert "all 1 runs this reconciler runs at once (--max-running) were busy" in row.error
    assert [f["reason"] for e, f in logs.lines if e == "run.missed"] == ["pool"]
    runner.shutdown(5)


def test_a_slot_arriving_at_a_full_backlog_is_recorded_missed_without_waiting(ledger: SqliteLedger) -> None:
    logs = Logs()
    runner = Runner(ledger, log=logs, environ={"PATH": "/usr/bin:/bin"}, max_workers=1, max_waiting=1)
    names = ["busy", "queued", "over"]
    runner.update({n: schedule(n, "2") for n in names}, "rev")
    runner.dispatch("busy", datetime.now(UTC))
    wait_for(lambda: runner.running("busy") == 1, what="the only worker to be busy")
    runner.dispatch("queued", datetime.now(UTC))
    runner.dispatch("over", datetime.now(UTC))
    wait_for(lambda: ledger.runs("over"), timeout=5, what="the overflow's row")
    (row,) = ledger.runs("over")
    assert row.status == RunStatus.MISSED
    assert row.error == "overload: 1 runs were already waiting to start (at most 1)"
    assert runner.running("busy") == 1  # recorded while the worker was still busy: it never waited
    runner.shutdown(0.1)
    assert {r.schedule for r in ledger.runs()} == set(names)  # the queued one too, at shutdown


class SlowClaims(SqliteLedger):
    """A ledger whose claims wait for the test's word: a run is being claimed as shutdown begins."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.claiming = threading.Event()
        self.go = threading.Event()

    def claim(self, *args: Any, **kwargs: Any) -> int | None:
        self.claiming.set()
        self.go.wait(10)
        return super().claim(*args, **kwargs)


def test_a_run_claimed_as_shutdown_begins_gets_the_grace_and_ends_as_it_ends(tmp_path: Path) -> None:
    ledger = SlowClaims(tmp_path / "l.db")
    runner = Runner(ledger, log=Logs(), environ={"PATH": "/usr/bin:/bin"})
    runner.update({"short": schedule("short", "0.5")}, "rev")
    runner.dispatch("short", datetime.now(UTC))
    assert ledger.claiming.wait(10)
    stopping = threading.Thread(target=runner.shutdown, args=(10,))
    stopping.start()
    time.sleep(0.2)  # shutdown has begun while the claim was in flight
    ledger.go.set()
    stopping.join(20)
    (row,) = ledger.runs("short")
    assert row.status == RunStatus.SUCCEEDED
    ledger.close()
