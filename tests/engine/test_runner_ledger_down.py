"""The runner when the ledger cannot be reached (fail closed), and when it answers that a newer
revision superseded a schedule: in-process, a real SQLite ledger behind a switch that makes each
call fail as an unreachable database would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.policy import RunStatus, SkipReason
from reconciler.engine.runner import Runner
from reconciler.ledger.base import LedgerError
from reconciler.ledger.sqlite import SqliteLedger
from tests.engine.test_runner import Logs, runs, schedule
from tests.harness import wait_for


class Switchable:
    """A ledger whose named methods raise LedgerError while `down` holds them."""

    def __init__(self, ledger: SqliteLedger) -> None:
        self._ledger = ledger
        self.down: set[str] = set()
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ledger, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.down:
                raise LedgerError(f"postgresql://r@db/x: cannot {name}: connection refused")
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def runner_on(led: Switchable, *texts: str) -> tuple[Runner, Logs, list[str | None], list[SkipReason]]:
    logs = Logs()
    r = Runner(led, log=logs, environ={"PATH": "/usr/bin:/bin"})
    states: list[str | None] = []
    refused: list[SkipReason] = []
    r.health.on_change = states.append
    r.on_refused = lambda name, reason: refused.append(reason)
    schedules = [schedule(t) for t in texts]
    r.update({s.name: s for s in schedules}, "rev-1")
    return r, logs, states, refused


def test_no_slot_runs_while_the_ledger_cannot_be_reached_and_that_is_said_once(
        ledger: SqliteLedger, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    led = Switchable(ledger)
    r, logs, states, refused = runner_on(
        led, f"name: t\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'echo x >> {marker}']}}\n")
    led.down = {"claim"}
    now = datetime.now(UTC)
    for i in range(5):
        r.dispatch("t", now + timedelta(seconds=i))
    wait_for(lambda: len(refused) == 5, what="five slots refused")
    assert refused == [SkipReason.UNREACHABLE] * 5
    assert r.health.unclaimed == 5
    assert len(states) == 1  # told once, not once per slot
    assert states[0] is not None
    assert "connection refused" in states[0]
    assert led.calls["claim"] == 5  # a claim is never retried: it may have been written
    assert not marker.exists()
    assert not [e for e, _ in logs.lines if e == "run.error"]
    led.down = set()
    r.dispatch("t", now + timedelta(seconds=10))
    wait_for(lambda: marker.exists(), what="the slot after the ledger returned")
    assert states == [states[0], None]  # and told once that it answers again
    r.shutdown(5)


def test_a_run_that_ends_while_the_ledger_is_down_is_written_once_it_answers(
        ledger: SqliteLedger, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    led = Switchable(ledger)
    r, logs, states, _ = runner_on(
        led, f"name: t\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'while [ ! -e {gate} ]; do sleep 0.05; "
             "done']}\n")
    r.dispatch("t", datetime.now(UTC))
    wait_for(lambda: r.running("t") == 1, what="the run to start")
    led.down = {"finish"}
    gate.touch()
    wait_for(lambda: led.calls.get("finish", 0) >= 3, timeout=10, what="the finish tried again")
    assert [x.status for x in runs(ledger, "t")] == [RunStatus.RUNNING]  # not written, and not guessed
    assert [e for e, _ in logs.lines].count("run.finish_retrying") == 1
    led.down = set()
    wait_for(lambda: [x.status for x in runs(ledger, "t")] == [RunStatus.SUCCEEDED], timeout=10,
             what="the end written once the ledger answers")
    assert ("run.finish_written" in [e for e, _ in logs.lines])
    assert states[-1] is None
    r.shutdown(5)


def test_a_finish_still_unwritten_at_shutdown_is_given_up_after_the_grace_never_guessed(
        ledger: SqliteLedger, tmp_path: Path) -> None:
    led = Switchable(ledger)
    r, logs, _, _ = runner_on(led, "name: t\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n")
    led.down = {"finish"}
    r.dispatch("t", datetime.now(UTC))
    wait_for(lambda: led.calls.get("finish", 0) >= 1, what="a finish tried")
    r.shutdown(0.5)
    assert "run.end_unrecorded" in [e for e, _ in logs.lines]
    assert [x.status for x in runs(ledger, "t")] == [RunStatus.RUNNING]  # its lease expires: abandoned by a reaper


def test_a_claim_superseded_by_a_newer_revision_runs_nothing_records_nothing_and_is_said_once(
        ledger: SqliteLedger, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    led = Switchable(ledger)
    r, logs, _, refused = runner_on(
        led, f"name: t\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'echo x >> {marker}']}}\n")
    ledger.advance_revision("rev-1", {"t": "whatever-rev-1-had"}, replica="a")
    ledger.advance_revision("rev-2", {}, replica="b")  # rev-2 removed t
    now = datetime.now(UTC)
    for i in range(3):
        r.dispatch("t", now + timedelta(seconds=i))
    wait_for(lambda: len(refused) == 3, what="three slots refused")
    assert refused == [SkipReason.SUPERSEDED] * 3
    assert runs(ledger, "t") == []  # the slots stay free for the replicas on rev-2
    said = [f for e, f in logs.lines if e == "run.superseded"]
    assert len(said) == 1
    assert (said[0]["newest"], said[0]["revision"]) == ("rev-2", "rev-1")
    assert not marker.exists()
    r.shutdown(5)


def test_a_shutdown_leaves_no_thread_of_the_runner_behind(ledger: SqliteLedger) -> None:
    before = threading.active_count()
    r, _, _, _ = runner_on(Switchable(ledger), "name: t\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n")
    r.dispatch("t", datetime.now(UTC))
    wait_for(lambda: [x.status for x in runs(ledger, "t")] == [RunStatus.SUCCEEDED], what="the run")
    r.shutdown(5)
    assert threading.active_count() == before
