"""The PostgreSQL ledger across a lost connection (a server restart or failover): found by the
chaos run (benchmarks/chaos.py), where a `pg_ctl restart -m immediate` left finished runs
`running` for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger.base import LedgerError, Outcome
from reconciler.ledger.postgres import PostgresLedger
from tests.pgserver import PgServer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _drop_every_session(pg_server: PgServer, url: str) -> int:
    """What a server restart does to a replica's pooled connections: they all die."""
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with pg_server.admin() as db:
        rows = db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", (dbname,)).fetchall()
    return len(rows)


def test_a_run_that_ends_while_its_connection_is_lost_is_finished_by_the_next_write_that_gets_through(
        postgres_url: str, pg_server: PgServer) -> None:
    led = PostgresLedger(postgres_url)
    try:
        led.register_replica("me", host="h", pid=1, version="v", revision=None, lease=LEASE)
        run_id = led.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0, owner="me",
                           exclusive=True, lease=LEASE)
        assert run_id is not None
        assert _drop_every_session(pg_server, postgres_url) >= 1
        # Not an error that loses the end: the run must not stay `running` (and hold `forbid`) for good.
        assert led.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0 + timedelta(seconds=1), exit_code=0)) is True
        for _ in range(10):  # the heartbeat after the restart; a dead pooled connection may fail once more
            try:
                led.heartbeat("me", lease=LEASE)
                break
            except LedgerError:
                continue
        run = led.run(run_id)
        assert run is not None
        assert (run.status, run.exit_code, run.finished_at) == (RunStatus.SUCCEEDED, 0, T0 + timedelta(seconds=1))
        assert led.claim("a", T0 + timedelta(seconds=2), attempt=1, cause=Cause.SCHEDULE, revision="r",
                         started_at=T0, owner="me", exclusive=True, lease=LEASE) is not None  # forbid released
    finally:
        led.close()

