"""Dependencies in the runner, with a real ledger and real processes (no daemon)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.engine.runner import Runner
from reconciler.ledger.base import RunRecord
from reconciler.ledger.sqlite import SqliteLedger
from tests.engine.test_runner import Logs
from tests.harness import wait_for


def fresh() -> datetime:
    """Now, read by each test: a slot due at import time would be late by the time a long suite runs it."""
    return datetime.now(UTC).replace(microsecond=0)


def schedules(text: str) -> list[Schedule]:
    result = Loader().load_bytes("s.yaml", text.encode(), fresh())
    assert not result.problems, result.problems
    return list(result.schedules)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def runner(ledger: SqliteLedger, text: str) -> Runner:
    r = Runner(ledger, log=Logs(), environ={"PATH": "/usr/bin:/bin"})
    r.update({s.name: s for s in schedules(text)}, "rev-1")
    return r


def runs(ledger: SqliteLedger, name: str) -> list[RunRecord]:
    return sorted(ledger.runs(name, limit=100), key=lambda r: r.id)


def settled(ledger: SqliteLedger, *names: str) -> bool:
    return all(r.status != "running" for n in names for r in runs(ledger, n))


CHAIN = """name: extract
schedule: {every: 1h}
run: {command: [/bin/true]}
---
name: transform
schedule: {after: [extract]}
run: {command: [/bin/sh, -c, "exit ${FAIL:-0}"], env: {FAIL: "%s"}}
---
name: load
schedule: {after: [transform], on: success}
run: {command: [/bin/true]}
---
name: alert
schedule: {after: [transform], on: failure}
run: {command: [/bin/true]}
"""


def test_a_chain_runs_each_step_once_with_the_first_steps_slot(ledger: SqliteLedger) -> None:
    now = fresh()
    r = runner(ledger, CHAIN % "0")
    slot = now - timedelta(seconds=1)
    r.dispatch("extract", slot)
    wait_for(lambda: len(runs(ledger, "load")) == 1 and settled(ledger, "extract", "transform", "load"),
             timeout=15, what="load to run")
    r.dispatch("extract", slot)  # the same slot again (another replica, a restart): nothing runs twice
    r.shutdown(5)
    for name in ("extract", "transform", "load"):
        [run] = runs(ledger, name)
        assert (run.slot, run.status) == (slot, RunStatus.SUCCEEDED)
    assert [r.cause for n in ("transform", "load") for r in runs(ledger, n)] == [Cause.UPSTREAM] * 2
    assert runs(ledger, "alert") == []


def test_a_failure_in_the_middle_stops_the_rest_and_starts_what_follows_failures(ledger: SqliteLedger) -> None:
    now = fresh()
    r = runner(ledger, CHAIN % "3")
    r.dispatch("extract", now)
    wait_for(lambda: len(runs(ledger, "alert")) == 1 and settled(ledger, "transform", "alert"),
             timeout=15, what="alert to run")
    r.shutdown(5)
    assert [x.status for x in runs(ledger, "transform")] == [RunStatus.FAILED]
    assert runs(ledger, "load") == []


def test_a_downstream_of_a_retried_step_waits_for_its_last_attempt(ledger: SqliteLedger, tmp_path: Path) -> None:
    now = fresh()
    flag = tmp_path / "flag"
    text = (f"name: a\nschedule: {{every: 1h}}\nrun: {{command: [/bin/sh, -c, 'test -e {flag} || "
            f"{{ touch {flag}; exit 1; }}']}}\npolicy: {{retries: {{limit: 1, backoff: 1s}}}}\n---\n"
            "name: b\nschedule: {after: [a], on: finished}\nrun: {command: [/bin/true]}\n")
    r = runner(ledger, text)
    r.dispatch("a", now)
    wait_for(lambda: len(runs(ledger, "b")) == 1 and settled(ledger, "a", "b"), timeout=15, what="b to run")
    r.shutdown(5)
    assert [x.status for x in runs(ledger, "a")] == [RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert len(runs(ledger, "b")) == 1  # once, after the attempt that was the last word


def test_all_runs_the_downstream_once_both_upstreams_have_succeeded_for_the_slot(ledger: SqliteLedger) -> None:
    now = fresh()
    text = ("name: a\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n---\n"
            "name: b\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n---\n"
            "name: c\nschedule: {after: [a, b], all: true}\nrun: {command: [/bin/true]}\n")
    r = runner(ledger, text)
    r.dispatch("a", now)
    wait_for(lambda: settled(ledger, "a") and len(runs(ledger, "a")) == 1, timeout=10, what="a to end")
    assert runs(ledger, "c") == []
    r.dispatch("b", now)
    wait_for(lambda: len(runs(ledger, "c")) == 1 and settled(ledger, "c"), timeout=10, what="c to run")
    r.shutdown(5)
    assert runs(ledger, "c")[0].slot == now


def test_a_gated_slot_is_skipped_with_the_reason_and_a_manual_run_resets_requires_self(ledger: SqliteLedger) -> None:
    text = ("name: g\nschedule: {every: 1h}\nrun: {command: [/bin/sh, -c, 'exit ${CODE}'], env: {CODE: '%s'}}\n"
            "policy: {starting_deadline: 1s}\nrequires: [{schedule: self, status: succeeded}]\n")
    r = runner(ledger, text % "1")
    assert r.run_now("g") is not None  # fails
    r.dispatch("g", datetime.now(UTC))
    wait_for(lambda: len(runs(ledger, "g")) == 2, timeout=10, what="the gated slot to be skipped")
    skipped = runs(ledger, "g")[1]
    assert skipped.status == RunStatus.SKIPPED
    assert skipped.error == "dependency: its own last run failed (requires succeeded)"
    r.update({s.name: s for s in schedules(text % "0")}, "rev-2")
    assert r.run_now("g") is not None  # the reset: a manual run is never gated
    r.dispatch("g", datetime.now(UTC) + timedelta(seconds=1))
    wait_for(lambda: len(runs(ledger, "g")) == 4 and settled(ledger, "g"), timeout=10, what="the next slot")
    r.shutdown(5)
    assert [x.status for x in runs(ledger, "g")] == [RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.SUCCEEDED,
                                                     RunStatus.SUCCEEDED]


def test_a_replica_that_did_not_run_the_upstream_starts_the_downstream_by_polling(ledger: SqliteLedger) -> None:
    now = fresh()
    text = ("name: a\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n---\n"
            "name: b\nschedule: {after: [a]}\nrun: {command: [/bin/true]}\n")
    one, other = runner(ledger, text), runner(ledger, text)
    other.poll_upstreams()  # the first poll sets where the next one starts
    with one._lock:
        one._downstream = {}  # as if it died before it could ask
    one.dispatch("a", now)
    wait_for(lambda: settled(ledger, "a") and len(runs(ledger, "a")) == 1, timeout=10, what="a to end")
    assert runs(ledger, "b") == []
    other.poll_upstreams()
    wait_for(lambda: len(runs(ledger, "b")) == 1 and settled(ledger, "b"), timeout=10, what="b to run")
    other.poll_upstreams()  # nothing twice
    one.shutdown(5)
    other.shutdown(5)
    assert [(x.slot, x.status) for x in runs(ledger, "b")] == [(now, RunStatus.SUCCEEDED)]


def test_a_downstream_asked_for_after_its_starting_deadline_is_missed_not_run(ledger: SqliteLedger) -> None:
    now = fresh()
    text = ("name: a\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\n---\n"
            "name: b\nschedule: {after: [a]}\nrun: {command: [/bin/true]}\npolicy: {starting_deadline: 1s}\n")
    r = runner(ledger, text)
    r.dispatch("b", now, datetime.now(UTC) - timedelta(seconds=5), cause=Cause.UPSTREAM)
    wait_for(lambda: len(runs(ledger, "b")) == 1, timeout=10, what="b to be recorded")
    r.shutdown(5)
    assert runs(ledger, "b")[0].status == RunStatus.MISSED
