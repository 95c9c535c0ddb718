"""A real daemon on a real PostgreSQL that is stopped (`pg_ctl stop`) and started again on the same
port: nothing runs unclaimed meanwhile, /readyz says why, one log line says so, a run that ended
during the outage is written when the server returns, and everything resumes by itself."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core.policy import RunStatus
from reconciler.ledger.postgres import PostgresLedger
from tests.harness import Daemon, lines, wait_for
from tests.pgserver import PgServer, find_binaries
from tests.service.test_postgres_daemons import UrlDaemon


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own: stopping it must not disturb the session's."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    server = PgServer(binaries).start()
    try:
        yield server
    finally:
        server.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_while_postgresql_is_down_nothing_runs_readyz_says_why_and_all_resumes_when_it_returns(
        tmp_path: Path, own_server: PgServer, daemons: list[Daemon]) -> None:
    url = own_server.url(own_server.create_database())
    sched = tmp_path / "schedules"
    sched.mkdir()
    ticks, done = tmp_path / "ticks", tmp_path / "done"
    (sched / "tick.yaml").write_text("name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
                                     f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT >> {ticks}']}}\n")
    # A run that starts before the outage and ends during it.
    (sched / "slow.yaml").write_text("name: slow\nschedule: {every: 5s}\npolicy: {concurrency: forbid}\n"
                                     f"run: {{command: [/bin/sh, -c, 'sleep 3; echo $RECONCILER_RUN_ID >> {done}']}}\n")
    d = UrlDaemon(sched, tmp_path, url)
    daemons.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    wait_for(lambda: len(lines(ticks)) >= 2, timeout=20, what="ticks before the outage")
    assert get(base + "/readyz")[0] == 200
    slow = d.wait_event("run.start", schedule="slow", timeout=20)["run_id"]

    own_server.halt()
    try:
        _status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get(base + "/readyz")), timeout=30,
                                what="/readyz false while PostgreSQL is down")
        assert "ledger" in body
        d.wait_event("ledger.unreachable", timeout=15)
        wait_for(lambda: str(slow) in lines(done), timeout=15, what="the slow job ending during the outage")
        d.wait_event("run.finish_retrying", schedule="slow", timeout=15)
        during = len(lines(ticks))
        time.sleep(2)  # nothing runs without a claim: no tick while the server is down
        metrics = get(base + "/metrics")[1]
        assert "reconciler_ledger_unreachable 1.0" in metrics
        assert len(lines(ticks)) == during
    finally:
        own_server.resume()

    d.wait_event("ledger.reachable", timeout=60)
    wait_for(lambda: get(base + "/readyz")[0] == 200, timeout=30, what="/readyz true again")
    after = len(lines(ticks))
    wait_for(lambda: len(lines(ticks)) >= after + 3, timeout=30, what="ticks after the outage")
    d.wait_event("run.finish_written", schedule="slow", timeout=30)
    led = PostgresLedger(url)
    try:
        ended = led.run(slow)
    finally:
        led.close()
    assert ended is not None
    assert ended.status == RunStatus.SUCCEEDED  # written when the server returned, not abandoned
    assert len(d.events("ledger.unreachable")) == 1  # one line, not one per slot
    assert not d.events("run.error")
    slots = lines(ticks)
    assert len(slots) == len(set(slots))
    assert d.stop() == 0
