"""Leases with real daemons: a SIGKILLed replica's run is abandoned by the other within lease +
heartbeat, on a SQLite file and on PostgreSQL, and every slot still runs once; a replica that
loses its database stops its job (fencing)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.policy import RunStatus
from reconciler.engine.leases import ABANDONED
from reconciler.ledger import open_ledger
from reconciler.ledger.base import RunRecord
from tests.harness import EXE, SHORT_LEASES, Daemon, lines, wait_for
from tests.pgserver import PgServer, find_binaries

HEARTBEAT, LEASE = 1.0, 4.0  # SHORT_LEASES
assert ("--heartbeat", f"{HEARTBEAT:g}s", "--lease", f"{LEASE:g}s") == SHORT_LEASES


class Replica(Daemon):
    """`reconciler run` on a ledger given by path or URL, with short leases."""

    def __init__(self, directory: Path, workdir: Path, ledger: str, *args: str) -> None:
        self.log_path = workdir / f"daemon-{time.monotonic_ns()}.log"
        self.ledger = Path(ledger)  # unused for a URL
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [EXE, "run", "--dir", str(directory), "--ledger", ledger, "--log-format", "json", "--rescan", "2s",
             "--listen", "127.0.0.1:0", *SHORT_LEASES, *args],
            cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop(signal.SIGKILL)  # also closes the log of a daemon that exited by itself


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "ledger.db")


def runs(location: str, name: str) -> list[RunRecord]:
    led = open_ledger(location)
    try:
        return led.runs(name, limit=10_000)[::-1]
    finally:
        led.close()


def at(event: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00"))


def test_a_replica_killed_during_a_long_run_has_it_abandoned_by_the_other_within_lease_and_heartbeat(
        tmp_path: Path, location: str, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    ticks = tmp_path / "ticks"
    (sched / "long.yaml").write_text("name: long\nschedule: {every: 2s}\npolicy: {concurrency: forbid}\n"
                                     "run: {command: [/bin/sleep, '60']}\n")
    # allow: a tick the killed replica was running must not hold the next ones until its lease expires.
    (sched / "tick.yaml").write_text("name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
                                     f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT >> {ticks}']}}\n")
    first = Replica(sched, tmp_path, location, "--grace", "1s")
    daemons.append(first)
    first.wait_event("reconciler.started", timeout=30)  # the ledger created and migrated: then the second
    second = Replica(sched, tmp_path, location, "--grace", "1s")
    daemons.append(second)
    second.wait_event("reconciler.started", timeout=30)

    def owner_pid() -> tuple[int, int] | None:
        led = open_ledger(location)
        try:
            pids = {r.id: r.pid for r in led.replicas()}
            running = [(r.id, pids.get(r.owner)) for r in led.runs("long", status=RunStatus.RUNNING)]
        finally:
            led.close()
        return (running[0][0], running[0][1] or 0) if running else None

    run_id, pid = wait_for(owner_pid, timeout=20, what="a long run")
    killed, survivor = (first, second) if pid == first.proc.pid else (second, first)
    assert pid == killed.proc.pid
    killed_at = datetime.now(UTC)
    killed.stop(signal.SIGKILL)

    abandoned = survivor.wait_event("run.abandoned", run_id=run_id, timeout=LEASE + HEARTBEAT + 10)
    assert abandoned["error"] == ABANDONED
    # Renewed at most a heartbeat before the kill, reaped at most a heartbeat after it expired.
    assert at(abandoned) - killed_at <= timedelta(seconds=LEASE + HEARTBEAT + 1)
    address = survivor.wait_event("http.listening")["address"]

    def shown() -> dict[int, dict[str, object]]:
        with urllib.request.urlopen(f"http://{address}/api/v1/replicas", timeout=10) as response:
            return {r["pid"]: r for r in json.load(response)["replicas"]}

    # A tick it claimed after its last heartbeat expires a little later: give that one a heartbeat.
    listed = wait_for(lambda: (s := shown())[killed.proc.pid]["runs_owned"] == 0 and s, timeout=LEASE + HEARTBEAT,
                      what="the killed replica to own nothing")
    assert listed[killed.proc.pid]["state"] == "expired"
    assert listed[survivor.proc.pid]["state"] == "alive"
    survivor.wait_event("run.start", schedule="long", timeout=10)  # forbid released: it carries on
    so_far = len(lines(ticks))
    wait_for(lambda: len(lines(ticks)) >= so_far + 3, timeout=10, what="three more ticks")
    assert survivor.stop() == 0

    by_slot: dict[datetime, list[RunRecord]] = {}
    for r in runs(location, "tick"):
        by_slot.setdefault(r.slot, []).append(r)
    assert all(len(v) == 1 for v in by_slot.values())
    slots = sorted(by_slot)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(slots)), "a slot was lost"
    after_kill = [s for s in slots if s > killed_at + timedelta(seconds=1)]
    assert len(after_kill) >= 3
    assert {s: by_slot[s][0].status for s in after_kill} == dict.fromkeys(after_kill, "succeeded")
    ran = lines(ticks)
    assert len(ran) == len(set(ran)), "a slot ran twice"
    long = {r.id: r for r in runs(location, "long")}
    assert long[run_id].status == "abandoned"
    assert {r.status for r in long.values() if r.id != run_id} <= {"succeeded", "skipped", "interrupted"}


@pytest.fixture
def own_pg_server() -> Iterator[PgServer]:
    """A server of this test's own, since the test stops it."""
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's initdb and pg_ctl are not installed; CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)")
    server = PgServer(binaries).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_replica_that_loses_postgresql_stops_its_job_and_carries_on_when_it_returns(
        tmp_path: Path, own_pg_server: PgServer, daemons: list[Daemon]) -> None:
    url = own_pg_server.url(own_pg_server.create_database())
    sched = tmp_path / "schedules"
    sched.mkdir()
    pids = tmp_path / "pids"
    (sched / "long.yaml").write_text("name: long\nschedule: {every: 2s}\npolicy: {concurrency: forbid}\n"
                                     f"run: {{command: [/bin/sh, -c, 'echo $$ >> {pids}; exec sleep 60']}}\n")
    d = Replica(sched, tmp_path, url, "--grace", "1s")
    daemons.append(d)
    d.wait_event("run.start", schedule="long", timeout=30)
    job = int(wait_for(lambda: lines(pids), what="the job's pid")[0])
    own_pg_server.halt()
    halted = time.monotonic()
    try:
        wait_for(lambda: not _alive(job), timeout=LEASE + 5, what="the job to be stopped by fencing")
        stopped_after = time.monotonic() - halted
        fenced = d.wait_event("replica.fenced")
        assert "its lease could not be renewed for 3s" in str(fenced["reason"])
        # Before any other replica could have seen the lease expire.
        assert stopped_after < LEASE
    finally:
        own_pg_server.resume()
    run_id = d.wait_event("run.start", schedule="long")["run_id"]
    # Recorded as it can: by this replica once it can write again (or by a reaper, had the lease
    # expired first); either way `abandoned`, and never run again.
    wait_for(lambda: runs(url, "long")[0].status == "abandoned", timeout=40, what="the run to be abandoned")
    wait_for(lambda: len(d.events("run.start")) >= 2, timeout=40, what="a new run after the database returned")
    assert d.stop() == 0
    first, *later = runs(url, "long")
    assert first.id == run_id
    assert (first.error or "").startswith(("this reconciler stopped the run: its lease could not be renewed",
                                           ABANDONED))
    assert all(r.slot != first.slot for r in later)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
