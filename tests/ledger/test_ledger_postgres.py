"""What only the PostgreSQL ledger has to promise: migrations shared by replicas, passwords kept
out of every message, and where the password may come from. The shared contract is in
test_ledger_contract.py."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import LedgerError, LedgerFull, Outcome
from reconciler.ledger.postgres import MIGRATIONS, PASSWORD_FILE_ENV, PostgresLedger
from tests.pgserver import ROLE, PgServer

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_replicas_opening_a_fresh_database_at_once_migrate_it_once(postgres_url: str) -> None:
    n = 8
    barrier = threading.Barrier(n)
    opened: list[PostgresLedger] = []
    failed: list[BaseException] = []

    def replica() -> None:
        try:
            barrier.wait(timeout=30)
            opened.append(PostgresLedger(postgres_url))
        except BaseException as e:
            failed.append(e)

    threads = [threading.Thread(target=replica) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert failed == []
        assert len(opened) == n
        assert sorted(led.migrated for led in opened) == [0] * (n - 1) + [len(MIGRATIONS)]
        assert {led.schema_version for led in opened} == {len(MIGRATIONS)}
    finally:
        for led in opened:
            led.close()
    with psycopg.connect(postgres_url) as db:
        rows = db.execute("SELECT version FROM ledger_schema ORDER BY version").fetchall()
    assert rows == [(v,) for v in range(1, len(MIGRATIONS) + 1)]


def test_reopening_migrates_nothing_and_a_newer_schema_is_refused(postgres_url: str) -> None:
    first = PostgresLedger(postgres_url)
    assert first.migrated == len(MIGRATIONS)
    first.close()
    again = PostgresLedger(postgres_url)
    assert (again.migrated, again.schema_version) == (0, len(MIGRATIONS))
    again.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("INSERT INTO ledger_schema (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(LedgerError, match="newer than this reconciler"):
        PostgresLedger(postgres_url)


def test_both_url_schemes_open_the_postgres_ledger(postgres_url: str) -> None:
    for i, url in enumerate((postgres_url, postgres_url.replace("postgresql://", "postgres://", 1))):
        led = open_ledger(url)
        try:
            assert isinstance(led, PostgresLedger)
            assert led.claim("a", T0 + timedelta(minutes=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                             started_at=T0) is not None
            assert len(led.runs("a")) == i + 1  # one database behind both spellings
        finally:
            led.close()


def test_times_come_back_in_utc_whatever_the_session_time_zone(postgres_url: str) -> None:
    led = PostgresLedger(f"{postgres_url}?options=-c%20TimeZone%3DAsia/Tokyo")
    try:
        run_id = led.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0)
        assert run_id is not None
        r = led.run(run_id)
        assert r is not None
        assert r.slot == T0
        assert r.slot.utcoffset() == timedelta(0)
        assert [x.id for x in led.runs(since=T0)] == [run_id]
    finally:
        led.close()


def _failures(pg_server: PgServer, postgres_url: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(secret, message) for every way of failing to open a ledger whose URL holds a password."""
    dbname = postgres_url.rsplit("/", 1)[1]
    out: list[tuple[str, str]] = []

    def attempt(url: str, secret: str) -> None:
        with pytest.raises(LedgerError) as info:
            PostgresLedger(url)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
        out.append((secret, str(info.value)))

    wrong = "Wr0ng-s3cret:@/%"
    attempt(pg_server.url(dbname, password=wrong), wrong)  # refused by the server
    attempt(f"postgresql://{ROLE}:hunter2hunter2@127.0.0.1:1/{dbname}", "hunter2hunter2")  # nobody listening
    attempt(f"postgresql://{ROLE}:hunter2hunter2@127.0.0.1:{pg_server.port}/{dbname}?sslmode=bogus",
            "hunter2hunter2")  # libpq refuses an option
    attempt(f"postgresql://{ROLE}:hunter2hunter2@127.0.0.1:notaport/{dbname}", "hunter2hunter2")
    attempt(f"postgresql://{ROLE}@127.0.0.1:{pg_server.port}/{dbname}?password=qwerty12345&bogus=1", "qwerty12345")
    pwfile = tmp_path / "pw"
    pwfile.write_text("from-a-file-but-wrong\n")
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(pwfile))
    attempt(pg_server.url(dbname, password=""), "from-a-file-but-wrong")
    return out


def test_no_ledger_error_and_no_log_line_contains_the_password(
        pg_server: PgServer, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failures = _failures(pg_server, postgres_url, tmp_path, monkeypatch)
    for secret, message in failures:
        assert secret not in message
        assert message.startswith(f"postgresql://{ROLE}@127.0.0.1:"), message
    assert "password authentication failed" in failures[0][1]  # the reason is still given
    assert "Connection refused" in failures[1][1] or "connect" in failures[1][1]
    for secret, _ in failures:
        assert secret not in caplog.text


def test_the_password_may_come_from_pgpassword_a_passfile_or_a_password_file(
        pg_server: PgServer, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = pg_server.url(postgres_url.rsplit("/", 1)[1], password="")
    assert ":" not in bare.split("//", 1)[1].split("@", 1)[0]
    for var in ("PGPASSWORD", "PGPASSFILE", PASSWORD_FILE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))  # never the developer's ~/.pgpass
    with pytest.raises(LedgerError, match="password"):
        PostgresLedger(bare)

    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    PostgresLedger(bare).close()
    monkeypatch.delenv("PGPASSWORD")

    passfile = tmp_path / "pgpass"
    escaped = pg_server.password.replace("\\", "\\\\").replace(":", "\\:")
    passfile.write_text(f"127.0.0.1:{pg_server.port}:*:{ROLE}:{escaped}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    PostgresLedger(bare).close()
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))

    secret = tmp_path / "secret"
    secret.write_text(pg_server.password + "\n")  # as a mounted Secret: the password, a newline
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(secret))
    PostgresLedger(bare).close()
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(LedgerError, match=f"cannot read the password file .*missing \\({PASSWORD_FILE_ENV}\\)"):
        PostgresLedger(bare)


def test_the_postgres_index_itself_refuses_a_second_running_exclusive_run(postgres_url: str) -> None:
    PostgresLedger(postgres_url).close()
    insert = ("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, exclusive) "
              "VALUES ('a', %s, 1, 'schedule', 'running', 'r', true)")
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(insert, (T0,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            db.execute(insert, (T0 + timedelta(minutes=1),))


# A full disk, as PostgreSQL reports it (SQLSTATE 53100), raised by a trigger on every write of a run.
FULL = """
CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device' USING ERRCODE = 'disk_full';
END $$;
CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION disk_full();
"""


def test_a_full_disk_is_reported_once_and_a_run_that_ended_meanwhile_is_finished_after(postgres_url: str) -> None:
    led = PostgresLedger(postgres_url)
    states: list[str | None] = []
    led.on_write_state = states.append
    try:
        running = led.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0, exclusive=True)
        assert running is not None
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(FULL)
        for i in range(1, 4):
            with pytest.raises(LedgerFull, match=r"the ledger cannot be written: .*No space left on device"):
                led.claim("b", T0 + timedelta(minutes=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                          started_at=T0)
        led.finish(running, Outcome(RunStatus.FAILED, T0, exit_code=3))  # no exception: the end is kept
        assert [r.id for r, _ in led.open_runs("a")] == [running]  # still running, holding the schedule
        assert len(states) == 1
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DROP TRIGGER disk_full ON runs")
        after = led.claim("a", T0 + timedelta(minutes=9), attempt=1, cause=Cause.SCHEDULE, revision="r",
                          started_at=T0, exclusive=True)
        assert after is not None  # the kept end was written first, which released the schedule
        assert states[1:] == [None]  # recovered, said once
        record = led.run(running)
        assert record is not None
        assert (record.status, record.exit_code) == ("failed", 3)
    finally:
        led.close()


def test_the_first_claim_after_a_postgresql_restart_wins_its_slot(pg_server: PgServer, postgres_url: str) -> None:
    # A restart kills the pool's idle connections: the next claim must not meet one of them and
    # lose its slot (chaos found a slot not run for that reason on each replica).
    led = PostgresLedger(postgres_url)
    try:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        assert led.claim("a", t0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=t0, owner="me")
        pg_server.restart("immediate")
        won = led.claim("a", t0 + timedelta(minutes=1), attempt=1, cause=Cause.SCHEDULE, revision="r",
                        started_at=t0, owner="me")
        assert won is not None
        assert [r.slot for r in led.runs("a")] == [t0 + timedelta(minutes=1), t0]
    finally:
        led.close()
