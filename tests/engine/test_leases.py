"""Leases in one process: a replica's heartbeat, its watchdog and its fencing, with an injected
monotonic clock; the runner stopping a run whose lease is lost, on both backends; the upgrade
that gives runs claimed before leases one lease."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.core.loader import Loader
from reconciler.core.policy import Cause
from reconciler.engine.leases import LeaseTimes, Replica
from reconciler.engine.runner import Runner
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, LedgerError
from reconciler.ledger.sqlite import MIGRATIONS, SqliteLedger
from tests.harness import wait_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = LeaseTimes(timedelta(seconds=5), timedelta(seconds=20))


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [f for e, f in self.lines if e == kind]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Fenced:
    def __init__(self) -> None:
        self.calls: list[tuple[list[int], str]] = []

    def __call__(self, run_ids: Collection[int], why: str) -> None:
        self.calls.append((sorted(run_ids), why))


class Unreachable:
    """A ledger whose heartbeats fail while `down`; everything else is the real one's."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.down = ledger, False

    def heartbeat(self, replica: str, **kw: Any) -> set[int] | None:
        if self.down:
            raise LedgerError("postgresql://u@db:5432/x: cannot renew leases: connection refused")
        return self.ledger.heartbeat(replica, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "l.db")
    yield led
    led.close()


def replica(ledger: Any, clock: Clock, fenced: Fenced, logs: Logs | None = None) -> Replica:
    r = Replica(ledger, log=logs or Logs(), clock=lambda: T0, times=TIMES, fence=fenced, monotonic=clock)
    r.start(threads=False)
    return r


def claim(ledger: Ledger, r: Replica, minute: int, lease: timedelta = TIMES.lease) -> int:
    sent = r.now()
    run_id = ledger.claim("a", T0 + timedelta(minutes=minute), attempt=1, cause=Cause.SCHEDULE, revision="r",
                          started_at=T0, owner=r.id, lease=lease)
    assert run_id is not None
    r.hold(run_id, sent)
    return run_id


def test_a_lease_must_last_at_least_two_heartbeats() -> None:
    with pytest.raises(ValueError, match=r"the lease \(9s\) must be at least twice the heartbeat \(5s\)"):
        LeaseTimes(timedelta(seconds=5), timedelta(seconds=9))
    with pytest.raises(ValueError, match="longer than 0"):
        LeaseTimes(timedelta(0), timedelta(seconds=9))
    assert (TIMES.fence_after, TIMES.kill_after) == (15.0, 2.5)  # a heartbeat to spare, SIGKILL within it


def test_a_run_is_fenced_when_its_lease_could_not_be_renewed_for_lease_minus_a_heartbeat(
        ledger: SqliteLedger) -> None:
    clock, fenced, logs = Clock(), Fenced(), Logs()
    flaky = Unreachable(ledger)
    r = replica(flaky, clock, fenced, logs)
    run_id = claim(ledger, r, 0)
    flaky.down = True
    for _ in range(2):  # heartbeats keep failing: said once
        clock.t += 5
        r.beat()
        r.watch()
    assert fenced.calls == []
    clock.t = 1000 + TIMES.fence_after - 0.001
    r.watch()
    assert fenced.calls == []
    clock.t = 1000 + TIMES.fence_after
    r.watch()
    assert fenced.calls == [([run_id], "this reconciler stopped the run: its lease could not be renewed for 15s "
                                       "(postgresql://u@db:5432/x: cannot renew leases: connection refused)")]
    assert len(logs.events("replica.heartbeat_failed")) == 1
    assert r.held() == set()
    r.watch()
    assert len(fenced.calls) == 1  # once
    flaky.down = False
    r.beat()
    assert len(logs.events("replica.heartbeat_recovered")) == 1


def test_each_good_heartbeat_moves_the_fence_to_lease_minus_a_heartbeat_after_it_was_sent(
        ledger: SqliteLedger) -> None:
    clock, fenced = Clock(), Fenced()
    flaky = Unreachable(ledger)
    r = replica(flaky, clock, fenced)
    run_id = claim(ledger, r, 0)
    clock.t += 10
    r.beat()
    flaky.down = True
    clock.t = 1000 + TIMES.fence_after + 1  # past the claim's fence, not the heartbeat's
    r.watch()
    assert fenced.calls == []
    clock.t = 1010 + TIMES.fence_after
    r.watch()
    assert [ids for ids, _ in fenced.calls] == [[run_id]]


def test_a_run_the_ledger_no_longer_holds_for_this_replica_is_fenced_at_the_next_heartbeat(
        ledger: SqliteLedger) -> None:
    clock, fenced = Clock(), Fenced()
    r = replica(ledger, clock, fenced)
    kept = claim(ledger, r, 0)
    lost = claim(ledger, r, 1, lease=timedelta(seconds=-1))  # expired: a reaper may end it any moment
    r.beat()
    assert fenced.calls == [([lost], "this reconciler stopped the run: the ledger no longer held the run's lease")]
    assert r.held() == {kept}


def test_a_run_that_ended_is_released_and_never_fenced(ledger: SqliteLedger) -> None:
    clock, fenced = Clock(), Fenced()
    r = replica(ledger, clock, fenced)
    run_id = claim(ledger, r, 0)
    r.release(run_id)
    clock.t += 60
    r.watch()
    r.beat()
    assert fenced.calls == []


def test_a_replica_whose_registration_is_gone_fences_every_run_and_registers_again(ledger: SqliteLedger) -> None:
    clock, fenced, logs = Clock(), Fenced(), Logs()
    r = replica(ledger, clock, fenced, logs)
    ids = [claim(ledger, r, 0), claim(ledger, r, 1)]
    ledger._db.execute("DELETE FROM replicas")
    r.beat()
    assert fenced.calls == [(ids, "this reconciler stopped the run: this reconciler's registration was gone "
                                  "from the ledger")]
    assert [x.id for x in ledger.replicas()] == [r.id]
    assert [e for e, _ in logs.lines] == ["replica.registered", "replica.lost", "replica.fenced",
                                          "replica.registered"]


def test_a_clean_stop_deregisters_the_replica(ledger: SqliteLedger) -> None:
    r = replica(ledger, Clock(), Fenced())
    assert [x.alive for x in ledger.replicas()] == [True]
    r.stop()
    (gone,) = ledger.replicas()
    assert (gone.alive, gone.stopped is not None) == (False, True)


# ---- the runner: fencing stops the job's processes ----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "ledger.db")


def delete_replicas(location: str) -> None:
    """Behind the replica's back, as an operator (or a bug) might."""
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as db:
            db.execute("DELETE FROM replicas")
    else:
        with sqlite3.connect(location) as db:
            db.execute("DELETE FROM replicas")


def test_a_runner_whose_lease_renewal_fails_stops_the_jobs_processes_and_records_them_abandoned(
        location: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    s = Loader().load_bytes("s.yaml", (
        "name: long\nschedule: {every: 1h}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $$ > {pid_file}; exec sleep 60']}}\n").encode(), T0).schedules[0]
    ledger = open_ledger(location)
    logs = Logs()
    runner = Runner(ledger, log=logs, environ={"PATH": "/usr/bin:/bin"},
                    leases=LeaseTimes(timedelta(seconds=1), timedelta(seconds=4)))
    runner.update({"long": s}, "rev-1")
    try:
        runner.start()
        runner.dispatch("long", datetime.now(UTC))
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job to start"))
        delete_replicas(location)
        wait_for(lambda: _gone(pid), timeout=5, what="the job to be stopped by fencing")
        wait_for(lambda: ledger.runs("long")[0].status != "running", what="the run to be recorded")
        (run,) = ledger.runs("long")
        assert (run.status, run.error) == (
            "abandoned", "this reconciler stopped the run: this reconciler's registration was gone from the ledger: "
            "killed by signal 15")
        assert logs.events("replica.fenced")[0]["runs"] == [run.id]
        assert [r.alive for r in ledger.replicas()] == [True]  # registered again, and carrying on
    finally:
        runner.shutdown(0)
        ledger.close()
        if pid_file.exists():
            _kill(int(pid_file.read_text()))


def test_a_run_whose_lease_is_lost_between_its_claim_and_its_start_is_stopped_at_once(
        ledger: SqliteLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Loader().load_bytes("s.yaml", b"name: long\nschedule: {every: 1h}\nrun: {command: [/bin/sleep, '30']}\n",
                            T0).schedules[0]
    runner = Runner(ledger, log=Logs(), environ={"PATH": "/usr/bin:/bin"})
    runner.update({"long": s}, "rev-1")
    runner.start()
    held = runner.replica.hold

    def held_then_lost(run_id: int, sent: float) -> None:
        held(run_id, sent)
        ledger._db.execute("DELETE FROM replicas")
        runner.replica.beat()  # before the runner knows the run's handle

    monkeypatch.setattr(runner.replica, "hold", held_then_lost)
    try:
        started = datetime.now(UTC)
        run_id = runner.run_now("long")
        assert run_id is not None
        run = ledger.run(run_id)
        assert run is not None
        assert (run.status, run.error) == ("abandoned", "this reconciler stopped the run: its lease was lost as it "
                                                        "started: killed by signal 15")
        assert datetime.now(UTC) - started < timedelta(seconds=10)
    finally:
        runner.shutdown(0)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# ---- upgrades ---------------------------------------------------------------------------------------


def test_a_run_claimed_before_leases_gets_one_lease_from_the_sqlite_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for migration in MIGRATIONS[:4]:  # the schema as shipped before leases
            db.executescript(migration)
        db.execute("PRAGMA user_version = 4")
        db.execute("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, owner) "
                   "VALUES ('a', 0, 1, 'schedule', 'running', 'r', 'h:1@2')")
    ledger = SqliteLedger(path)
    try:
        assert ledger.expired_runs() == []  # not reaped at once: a still-running old version may own it
        (left,) = ledger._db.execute(
            "SELECT lease_until - CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000 "
            "FROM runs").fetchone()
        assert 15_000_000 < left <= 20_000_000
    finally:
        ledger.close()


def test_a_run_claimed_before_leases_gets_one_lease_from_the_postgresql_upgrade(postgres_url: str) -> None:
    from reconciler.ledger.postgres import MIGRATIONS as PG_MIGRATIONS
    from reconciler.ledger.postgres import PostgresLedger

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE ledger_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
                   "DEFAULT now())")
        for statement in PG_MIGRATIONS[0].split(";"):
            db.execute(statement)
        db.execute("INSERT INTO ledger_schema (version) VALUES (1)")
        db.execute("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, owner) "
                   "VALUES ('a', now(), 1, 'schedule', 'running', 'r', 'h:1@2')")
    ledger = PostgresLedger(postgres_url)
    try:
        assert ledger.migrated == len(PG_MIGRATIONS) - 1
        assert ledger.expired_runs() == []
    finally:
        ledger.close()
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT extract(epoch FROM lease_until - now()) FROM runs").fetchone()
    assert row is not None
    assert 15 < float(row[0]) <= 20


# ---- what the API shows ---------------------------------------------------------------------------


def test_the_replicas_view_says_which_are_alive_expired_or_stopped_and_what_they_own(ledger: SqliteLedger) -> None:
    from reconciler.service.replicas import replicas

    for name, lease in (("up", timedelta(hours=1)), ("dead", timedelta(seconds=-1)), ("done", timedelta(hours=1))):
        ledger.register_replica(name, host="h", pid=7, version="0.1.0", revision="rev", lease=lease)
    ledger.deregister_replica("done")
    ledger.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0, owner="up")
    shown = {r["id"]: r for r in replicas(ledger)["replicas"]}
    assert {n: (r["state"], r["runs_owned"]) for n, r in shown.items()} == {
        "up": ("alive", 1), "dead": ("expired", 0), "done": ("stopped", 0)}
    up = shown["up"]
    assert (up["host"], up["pid"], up["version"], up["revision"], up["stopped"]) == ("h", 7, "0.1.0", "rev", None)
    assert up["last_heartbeat"].endswith("Z")
    assert shown["done"]["stopped"] is not None
