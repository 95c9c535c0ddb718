"""One contract for every ledger backend: SQLite and a real PostgreSQL (a database per test)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Commit, Ledger, LedgerError, Outcome, PoolFull, SpecChange
from reconciler.ledger.sqlite import MIGRATIONS, SqliteLedger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty ledger of each backend lives: a path or a URL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "sub" / "ledger.db")  # the directory is created on demand


@pytest.fixture
def ledger(location: str) -> Iterator[Ledger]:
    backend = open_ledger(location)
    yield backend
    backend.close()


def claim(ledger: Ledger, name: str = "a", minute: int = 0, attempt: int = 1, cause: Cause = Cause.SCHEDULE,
          **kw: object) -> int | None:
    return ledger.claim(name, T0 + timedelta(minutes=minute), attempt=attempt, cause=cause, revision="r1",
                        started_at=T0, **kw)  # type: ignore[arg-type]


def test_a_slot_is_claimed_once(ledger: Ledger) -> None:
    first = claim(ledger)
    assert first is not None
    assert claim(ledger) is None
    assert claim(ledger, attempt=2, cause=Cause.RETRY) is not None  # a retry is its own row


def test_finish_records_the_outcome_and_the_run_reads_back(ledger: Ledger) -> None:
    run_id = claim(ledger)
    assert run_id is not None
    ledger.finish(run_id, Outcome(RunStatus.FAILED, T0 + timedelta(seconds=3), exit_code=2,
                                  error="exited with status 2", output="boom\n", output_dropped=10))
    r = ledger.run(run_id)
    assert r is not None
    assert (r.status, r.exit_code, r.error, r.output, r.output_dropped) == (
        "failed", 2, "exited with status 2", "boom\n", 10)
    assert r.duration == timedelta(seconds=3)
    assert r.slot == T0


def test_runs_are_listed_newest_first_with_filters_and_paging(ledger: Ledger) -> None:
    ids = [claim(ledger, name="a" if i % 2 else "b", minute=i) for i in range(10)]
    for i, run_id in enumerate(ids):
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED if i % 3 else RunStatus.FAILED, T0))
    assert [r.id for r in ledger.runs(limit=3)] == ids[::-1][:3]
    assert all(r.schedule == "a" for r in ledger.runs("a"))
    assert {r.status for r in ledger.runs(status=RunStatus.FAILED)} == {"failed"}
    page = ledger.runs(limit=4)
    assert [r.id for r in ledger.runs(limit=4, before_id=page[-1].id)] == ids[::-1][4:8]
    assert len(ledger.runs(since=T0 + timedelta(minutes=8))) == 2
    assert len(ledger.runs("a")) == 5


def test_record_writes_a_run_that_never_started(ledger: Ledger) -> None:
    run_id = ledger.record("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r1",
                           outcome=Outcome(RunStatus.SKIPPED, T0, error="previous run still running"))
    assert run_id is not None
    r = ledger.run(run_id)
    assert r is not None
    assert (r.status, r.started_at) == ("skipped", None)
    assert ledger.record("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r1",
                         outcome=Outcome(RunStatus.MISSED, T0)) is None


def test_last_slots_are_the_newest_of_runs_with_the_causes_asked(ledger: Ledger) -> None:
    claim(ledger, minute=5)
    claim(ledger, minute=50, cause=Cause.MANUAL)
    claim(ledger, minute=3, attempt=2, cause=Cause.RETRY)
    claim(ledger, name="m", minute=1, cause=Cause.MANUAL)
    timeline = {Cause.SCHEDULE, Cause.RETRY, Cause.CATCHUP}
    assert ledger.last_slots(timeline) == {"a": T0 + timedelta(minutes=5)}
    assert ledger.last_slots({Cause.RETRY}) == {"a": T0 + timedelta(minutes=3)}
    claim(ledger, name="b", minute=7)
    assert ledger.last_slots(timeline) == {"a": T0 + timedelta(minutes=5), "b": T0 + timedelta(minutes=7)}
    assert ledger.last_slots({Cause.MANUAL}) == {"a": T0 + timedelta(minutes=50), "m": T0 + timedelta(minutes=1)}


def test_retention_keeps_the_newest_finished_runs(ledger: Ledger) -> None:
    for i in range(10):
        run_id = claim(ledger, minute=i)
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0), keep=3)
    open_id = claim(ledger, minute=99)
    assert [r.slot.minute for r in ledger.runs("a")] == [39, 9, 8, 7]  # minute 99 = 1:39; running ones stay
    assert open_id is not None
    assert [r.id for r, _ in ledger.open_runs()] == [open_id]


def test_max_runs_stops_counted_claims_and_survives_retention(ledger: Ledger) -> None:
    for i in range(3):
        run_id = claim(ledger, minute=i, counted=True, max_runs=3)
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0), keep=1)
    assert claim(ledger, minute=3, counted=True, max_runs=3) is None
    assert ledger.started_count("a") == 3
    # Whether a claim counts is the caller's (the policy's), whatever its cause: here a scheduled one.
    assert claim(ledger, minute=4, max_runs=3) is not None
    assert claim(ledger, minute=5, cause=Cause.MANUAL, counted=True) is not None
    assert ledger.started_count("a") == 4


def test_revisions_store_each_distinct_spec_once(ledger: Ledger, tmp_path: Path) -> None:
    spec = {"name": "a", "schedule": {"cron": "0 2 * * *"}, "run": {"command": ["x"]}}
    ledger.record_revision("r1", T0, {"add": 1}, {"a": spec}, {"a": "h1"})
    ledger.record_revision("r2", T0 + timedelta(hours=1), {"add": 1}, {"b": spec}, {"a": "h1", "b": "h1"})
    last = ledger.last_revision()
    assert last is not None
    assert (last.revision, last.hashes, last.counts) == ("r2", {"a": "h1", "b": "h1"}, {"add": 1})
    assert last.specs(ledger) == {"a": spec, "b": spec}
    assert last.seq > 1


def test_times_are_read_back_in_utc_whatever_offset_they_were_given_in(ledger: Ledger) -> None:
    tokyo = timezone(timedelta(hours=9))
    run_id = ledger.claim("a", T0.astimezone(tokyo), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                          started_at=(T0 + timedelta(seconds=1)).astimezone(tokyo))
    assert run_id is not None
    r = ledger.run(run_id)
    assert r is not None
    assert (r.slot, r.started_at) == (T0, T0 + timedelta(seconds=1))
    assert r.slot.utcoffset() == timedelta(0)
    # Compared as instants: 08:59:59 in Tokyo is one second before T0.
    assert [x.id for x in ledger.runs(since=(T0 - timedelta(seconds=1)).astimezone(tokyo))] == [run_id]
    assert ledger.runs(since=(T0 + timedelta(microseconds=1)).astimezone(tokyo)) == []
    assert ledger.last_slots({Cause.SCHEDULE}) == {"a": T0}


def test_output_round_trips_exactly_even_with_a_nul_byte(ledger: Ledger) -> None:
    run_id = claim(ledger)
    assert run_id is not None
    output = "before\x00after \u00e9\U0001f600\n"
    ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0, output=output))
    r = ledger.run(run_id)
    assert r is not None
    assert r.output == output


def test_max_runs_holds_when_four_processes_race_for_different_slots(location: str) -> None:
    open_ledger(location).close()  # migrated before the race
    procs = [subprocess.Popen([sys.executable, "-c", RACER, location, f"p{i}", "3"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    won = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(won) == 3
    led = open_ledger(location)
    try:
        assert led.started_count("race") == 3
        assert len(led.runs("race")) == 3
    finally:
        led.close()


def test_reopening_migrates_nothing_twice_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    SqliteLedger(path).close()
    again = SqliteLedger(path)
    assert again.schema_version == len(MIGRATIONS)
    again.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(LedgerError, match="newer than this reconciler"):
        SqliteLedger(path)


def test_the_sqlite_ledger_uses_wal_and_full_sync(tmp_path: Path) -> None:
    led = SqliteLedger(tmp_path / "l.db")
    assert led._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert led._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    led.close()


# Claims 1000 slots (or, with a third argument, as many as max_runs allows) and prints how many it won.
RACER = """
import sys
from datetime import UTC, datetime, timedelta
from reconciler.core.policy import Cause
from reconciler.ledger import open_ledger
led = open_ledger(sys.argv[1])
max_runs = int(sys.argv[3]) if len(sys.argv) > 3 else None
t0 = datetime(2026, 1, 1, tzinfo=UTC)
won = [i for i in range(1000 if max_runs is None else 50)
       if led.claim("race", t0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=t0,
                    owner=sys.argv[2], counted=True, max_runs=max_runs) is not None]
led.close()
print(len(won))
"""


def test_two_processes_racing_for_1000_slots_produce_exactly_1000_runs(location: str) -> None:
    open_ledger(location).close()
    procs = [subprocess.Popen([sys.executable, "-c", RACER, location, f"p{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    won = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(won) == 1000
    led = open_ledger(location)
    try:
        runs = [r for r, _ in led.open_runs()]
        assert len(runs) == len({r.slot for r in runs}) == 1000
        owners: dict[str, int] = {}
        for _, owner in led.open_runs():
            owners[owner] = owners.get(owner, 0) + 1
    finally:
        led.close()
    assert owners == {f"p{i}": n for i, n in enumerate(won) if n}


def test_an_exclusive_claim_fails_while_another_run_of_the_schedule_is_running(ledger: Ledger) -> None:
    first = claim(ledger, minute=0, exclusive=True)
    assert first is not None
    assert claim(ledger, minute=1, exclusive=True) is None  # forbid: the first still runs
    assert claim(ledger, minute=1, attempt=2, cause=Cause.RETRY, exclusive=True) is None
    assert claim(ledger, name="other", minute=1, exclusive=True) is not None  # per schedule
    ledger.finish(first, Outcome(RunStatus.SUCCEEDED, T0))
    assert claim(ledger, minute=1, exclusive=True) is not None


def test_an_exclusive_claim_also_waits_for_a_run_claimed_before_the_schedule_became_forbid(ledger: Ledger) -> None:
    allowed = claim(ledger, minute=0)
    assert allowed is not None
    assert claim(ledger, minute=1) is not None  # allow: runs may overlap
    assert claim(ledger, minute=2, exclusive=True) is None
    ledger.finish(allowed, Outcome(RunStatus.SUCCEEDED, T0))
    assert claim(ledger, minute=2, exclusive=True) is None  # minute 1 still runs


def test_a_skipped_or_missed_record_does_not_hold_an_exclusive_schedule(ledger: Ledger) -> None:
    ledger.record("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r1", outcome=Outcome(RunStatus.SKIPPED, T0))
    assert claim(ledger, minute=1, exclusive=True) is not None


def test_where_a_run_lives_is_kept_for_the_reaper(ledger: Ledger) -> None:
    kept = claim(ledger, owner="h:1", lease=timedelta(seconds=-1))
    bare = claim(ledger, minute=1, owner="h:1", lease=timedelta(seconds=-1))
    assert kept is not None
    assert bare is not None
    ledger.set_processes(kept, '{"pgid": 42}')
    ledger.set_processes(kept + 1000, "{}")  # no such run: nothing happens
    assert [(e.record.id, e.owner, e.processes) for e in ledger.expired_runs()] == [
        (kept, "h:1", '{"pgid": 42}'), (bare, "h:1", None)]


def test_open_runs_of_one_schedule(ledger: Ledger) -> None:
    a = claim(ledger, minute=0)
    b = claim(ledger, name="b", minute=0)
    assert [r.id for r, _ in ledger.open_runs("a")] == [a]
    assert [r.id for r, _ in ledger.open_runs()] == [a, b]


def test_last_attempts_lists_each_slot_whose_newest_attempt_failed(ledger: Ledger) -> None:
    def attempt(name: str, minute: int, number: int, status: str) -> int:
        run_id = claim(ledger, name=name, minute=minute, attempt=number,
                       cause=Cause.RETRY if number > 1 else Cause.SCHEDULE)
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus(status), T0 + timedelta(minutes=minute)))
        return run_id

    pending_a0 = attempt("a", 0, 1, "failed")  # older than a's newest row: the row last_runs() missed
    attempt("a", 1, 1, "failed")
    later = attempt("a", 1, 2, "succeeded")  # retried already
    pending_a2 = attempt("a", 2, 1, "timed_out")
    attempt("a", 3, 1, "succeeded")
    attempt("b", 0, 1, "failed")  # a schedule not asked about
    open_id = claim(ledger, minute=4)  # running: not finished yet
    assert open_id is not None
    assert later
    found = ledger.last_attempts((RunStatus.FAILED, RunStatus.TIMED_OUT), ["a", "nobody"])
    assert [(r.id, r.attempt, r.status) for r in found] == [(pending_a0, 1, "failed"), (pending_a2, 1, "timed_out")]
    assert ledger.last_attempts((RunStatus.FAILED,), []) == []


def test_the_sqlite_index_itself_refuses_a_second_running_exclusive_run(tmp_path: Path) -> None:
    # What PostgreSQL will use too: the guarantee does not depend on the claim's own check.
    led = SqliteLedger(tmp_path / "l.db")
    insert = ("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, exclusive) "
              "VALUES ('a', ?, 1, 'schedule', 'running', 'r', 1)")
    led._db.execute(insert, (1,))
    with pytest.raises(sqlite3.IntegrityError):
        led._db.execute(insert, (2,))
    led.close()


EXCLUSIVE_RACER = """
import sys
from datetime import UTC, datetime, timedelta
from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Outcome
led = open_ledger(sys.argv[1])
t0 = datetime(2026, 1, 1, tzinfo=UTC)
won = overlaps = 0
for i in range(300):
    run_id = led.claim("race", t0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                       started_at=t0, owner=sys.argv[2], exclusive=True)
    if run_id is None:
        continue
    won += 1
    overlaps += len(led.open_runs("race")) - 1
    led.finish(run_id, Outcome(RunStatus.SUCCEEDED, t0))
led.close()
print(won, overlaps)
"""


def test_two_processes_racing_for_exclusive_claims_never_run_two_at_once(location: str) -> None:
    open_ledger(location).close()
    procs = [subprocess.Popen([sys.executable, "-c", EXCLUSIVE_RACER, location, f"p{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(2)]
    results = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert [overlaps for _, overlaps in results] == [0, 0]
    led = open_ledger(location)
    try:
        assert len(led.runs(limit=1000)) == sum(won for won, _ in results) > 0
    finally:
        led.close()


# ---- replicas and leases ---------------------------------------------------------------------------
#
# The leases are on the database's clock, which a test cannot set. Time is injected through the
# lease durations instead: a negative lease has expired when it is given, an hour's cannot expire
# during a test. The one test that needs the clock to move waits for it, briefly and bounded.

HOUR = timedelta(hours=1)
GONE = timedelta(seconds=-1)


def register(ledger: Ledger, replica: str, lease: timedelta = HOUR, revision: str | None = "r1") -> None:
    ledger.register_replica(replica, host="h", pid=1, version="0.1.0", revision=revision, lease=lease)


def test_a_claim_carries_its_owner_and_a_lease_that_expires_unless_renewed(ledger: Ledger) -> None:
    live = claim(ledger, minute=0, owner="r1", lease=HOUR)
    expired = claim(ledger, minute=1, owner="r1", lease=GONE)
    assert live is not None
    assert expired is not None
    assert [(e.record.id, e.owner) for e in ledger.expired_runs()] == [(expired, "r1")]
    r = ledger.run(live)
    assert r is not None
    assert r.owner == "r1"


def test_a_heartbeat_renews_the_replica_and_only_its_own_unexpired_running_runs(ledger: Ledger) -> None:
    register(ledger, "r1")
    mine = claim(ledger, minute=0, owner="r1", lease=HOUR)
    ended = claim(ledger, minute=1, owner="r1", lease=HOUR)
    lapsed = claim(ledger, minute=2, owner="r1", lease=GONE)
    theirs = claim(ledger, minute=3, owner="r2", lease=HOUR)
    assert None not in (mine, ended, lapsed, theirs)
    assert ended is not None
    ledger.finish(ended, Outcome(RunStatus.SUCCEEDED, T0))
    assert ledger.heartbeat("r1", lease=HOUR, revision="r2") == {mine}
    # An expired lease is never renewed: from its expiry the run is the reapers'.
    assert [e.record.id for e in ledger.expired_runs()] == [lapsed]
    # A heartbeat whose lease is short shortens the leases it renews.
    assert ledger.heartbeat("r1", lease=GONE) == {mine}
    assert [e.record.id for e in ledger.expired_runs()] == [mine, lapsed]
    assert ledger.heartbeat("r1", lease=HOUR) == set()
    (replica,) = ledger.replicas()
    assert replica.revision == "r2"  # kept when a heartbeat does not say


def test_a_heartbeat_of_a_replica_that_is_not_registered_says_so(ledger: Ledger) -> None:
    assert ledger.heartbeat("nobody", lease=HOUR) is None
    register(ledger, "r1")
    ledger.deregister_replica("r1")
    assert ledger.heartbeat("r1", lease=HOUR) is None  # stopped: its runs are not its any more
    register(ledger, "r1")  # registering again starts it afresh
    assert ledger.heartbeat("r1", lease=HOUR) == set()


def test_leases_expire_on_the_database_clock(ledger: Ledger) -> None:
    register(ledger, "r1", lease=timedelta(milliseconds=300))
    kept = claim(ledger, minute=0, owner="r1", lease=timedelta(milliseconds=300))
    left = claim(ledger, minute=1, owner="r2", lease=timedelta(milliseconds=300))
    assert ledger.heartbeat("r1", lease=HOUR) == {kept}
    assert ledger.expired_runs() == []
    deadline = time.monotonic() + 5
    while not ledger.expired_runs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.record.id for e in ledger.expired_runs()] == [left]
    assert [(r.id, r.alive) for r in ledger.replicas()] == [("r1", True)]


def test_abandon_ends_a_run_once_and_only_when_its_lease_has_expired(ledger: Ledger) -> None:
    live = claim(ledger, minute=0, owner="r1", lease=HOUR)
    expired = claim(ledger, minute=1, owner="r1", lease=GONE)
    assert live is not None
    assert expired is not None
    assert not ledger.abandon(live, T0, "no")
    assert ledger.abandon(expired, T0 + timedelta(seconds=5), "its lease expired")
    assert not ledger.abandon(expired, T0, "again")
    r = ledger.run(expired)
    assert r is not None
    assert (r.status, r.error, r.finished_at) == ("abandoned", "its lease expired", T0 + timedelta(seconds=5))
    # The owner's late end does not overwrite the reaper's, and the slot is never claimed again.
    assert not ledger.finish(expired, Outcome(RunStatus.SUCCEEDED, T0))
    assert ledger.run(expired).status == "abandoned"  # type: ignore[union-attr]
    assert claim(ledger, minute=1, owner="r2") is None
    assert ledger.expired_runs() == []


def test_finish_ends_only_a_running_run_and_the_first_end_stands(ledger: Ledger) -> None:
    run_id = claim(ledger)
    assert run_id is not None
    assert ledger.finish(run_id, Outcome(RunStatus.FAILED, T0, exit_code=1))
    assert not ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0))
    r = ledger.run(run_id)
    assert r is not None
    assert (r.status, r.exit_code) == ("failed", 1)


def test_an_abandoned_run_releases_a_forbid_schedule(ledger: Ledger) -> None:
    held = claim(ledger, minute=0, owner="r1", exclusive=True, lease=GONE)
    assert held is not None
    assert claim(ledger, minute=1, owner="r2", exclusive=True) is None
    assert ledger.abandon(held, T0, "its lease expired")
    assert claim(ledger, minute=1, owner="r2", exclusive=True) is not None


def test_replicas_are_listed_alive_expired_or_stopped_with_the_runs_they_own(ledger: Ledger) -> None:
    register(ledger, "alive")
    register(ledger, "lapsed", lease=GONE)
    register(ledger, "stopped")
    ledger.deregister_replica("stopped")
    claim(ledger, minute=0, owner="alive")
    claim(ledger, minute=1, owner="alive")
    claim(ledger, minute=2, owner="lapsed", lease=GONE)
    done = claim(ledger, minute=3, owner="alive")
    assert done is not None
    ledger.finish(done, Outcome(RunStatus.SUCCEEDED, T0))
    listed = {r.id: r for r in ledger.replicas()}
    assert {n: (r.alive, r.runs, r.stopped is not None) for n, r in listed.items()} == {
        "alive": (True, 2, False), "lapsed": (False, 1, False), "stopped": (False, 0, True)}
    a = listed["alive"]
    assert (a.host, a.pid, a.version, a.revision) == ("h", 1, "0.1.0", "r1")
    assert a.started <= a.heartbeat < a.lease_until
    assert a.heartbeat.utcoffset() == timedelta(0)
    assert abs(a.heartbeat - datetime.now(UTC)) < timedelta(minutes=1)  # the database's clock, not T0


def test_registering_forgets_replicas_gone_for_over_a_day_that_own_no_running_run(ledger: Ledger) -> None:
    two_days_ago = -timedelta(days=2)
    register(ledger, "forgotten", lease=two_days_ago)
    register(ledger, "still-owns", lease=two_days_ago)
    claim(ledger, owner="still-owns", lease=GONE)  # its run waits for a reaper; so does its row
    register(ledger, "recent", lease=GONE)
    register(ledger, "new")
    assert sorted(r.id for r in ledger.replicas()) == ["new", "recent", "still-owns"]


def test_reapers_racing_for_the_same_expired_runs_end_each_once(location: str) -> None:
    setup = open_ledger(location)
    ids = [claim(setup, minute=i, owner="dead", lease=GONE) for i in range(40)]
    setup.close()
    barrier = threading.Barrier(3)
    won: list[list[int]] = []

    def reaper() -> None:
        led = open_ledger(location)
        try:
            barrier.wait(timeout=30)
            won.append([e.record.id for e in led.expired_runs() if led.abandon(e.record.id, T0, "expired")])
        finally:
            led.close()

    threads = [threading.Thread(target=reaper) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(i for w in won for i in w) == ids


OPENER = """
import sys, time
from reconciler.ledger.sqlite import SqliteLedger
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
SqliteLedger(sys.argv[1]).close()
"""


def test_eight_processes_opening_one_new_sqlite_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    # Replicas sharing a volume start together: switching a new file to WAL must wait, not fail.
    for round_ in range(3):
        path = tmp_path / f"l{round_}.db"
        at = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(at)], stderr=subprocess.PIPE,
                                  text=True) for _ in range(8)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, "\n".join(e for e in errors if e)
        led = SqliteLedger(path)
        assert led.schema_version == len(MIGRATIONS)
        led.close()


# ---- copying a whole ledger (`reconciler ledger copy`) -----------------------------------------------

def _every_kind_of_run(led: Ledger) -> None:
    """Three revisions (two stored as changes), a counter, and a run of every status, one with NUL
    bytes in its output."""
    first = led.record_revision("r1", T0, {"a": 1}, {"a": {"name": "a", "n": 1}}, {"a": "h1"})
    second = led.record_revision("r2", T0 + timedelta(hours=1), {"a": 1, "b": 1},
                                 {"a": {"name": "a", "n": 2}, "b": {"name": "b"}}, {"a": "h2", "b": "h3"},
                                 parent=first, changes={"a": "h2", "b": "h3"})
    led.record_revision("r3", T0 + timedelta(hours=2), {"a": 1}, {}, {"a": "h2"},
                        parent=second, changes={"b": None})
    led.register_replica("me", host="h", pid=1, version="v", revision="r2", lease=timedelta(seconds=30))
    minute = 0
    for status in RunStatus:
        minute += 1
        if status in (RunStatus.SKIPPED, RunStatus.MISSED):
            led.record("a", T0 + timedelta(minutes=minute), attempt=1, cause=Cause.CATCHUP, revision="r2",
                       outcome=Outcome(status, T0 + timedelta(minutes=minute), error=f"why {status}"))
            continue
        run_id = claim(led, "a", minute, owner="me", counted=True, exclusive=status == RunStatus.RUNNING,
                       lease=timedelta(0) if status == RunStatus.ABANDONED else timedelta(seconds=30))
        assert run_id is not None
        led.set_processes(run_id, '{"host": "h", "pgid": 12}')
        if status == RunStatus.ABANDONED:
            time.sleep(0.01)  # past its lease on the database's clock
            assert led.abandon(run_id, T0 + timedelta(seconds=5), "the reconciler running it stopped")
        elif status != RunStatus.RUNNING:
            led.finish(run_id, Outcome(status, T0 + timedelta(minutes=minute, microseconds=123457), exit_code=3,
                                       output="a\x00b\n\u00e9t\u00e9\n", output_dropped=7, error="boom",
                                       peak_memory=5 << 20, cpu_user=0.25, cpu_system=0.125))  # usage is copied


def _everything(led: Ledger) -> tuple[object, ...]:
    runs = led.runs(limit=1000)
    rev = led.last_revision()
    assert rev is not None
    return ([led.run(r.id) for r in runs], rev, led.specs(rev.hashes), led.specs({"old": "h1"}),
            led.started_count("a"), led.open_runs())


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_a_ledger_copied_to_the_other_backend_reads_back_the_same_and_goes_on_after_it(
        direction: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    sqlite_path, url = str(tmp_path / "ledger.db"), str(request.getfixturevalue("postgres_url"))
    source, destination = (open_ledger(sqlite_path), open_ledger(url)) if direction.startswith("sqlite") else (
        open_ledger(url), open_ledger(sqlite_path))
    try:
        _every_kind_of_run(source)
        copied = destination.load(source.dump())
        assert (copied.specs, copied.revisions, copied.counters, copied.runs) == (3, 3, 1, len(RunStatus))
        assert _everything(destination) == _everything(source)
        assert {r.status for r in destination.runs()} == set(RunStatus)
        assert destination.replicas() == []  # replicas are the source's processes, not history
        newest = max(r.id for r in source.runs())
        assert (claim(destination, "b", 99) or 0) > newest
        assert [destination.revision(seq).hashes for seq in (1, 2, 3)] == [  # type: ignore[union-attr]
            {"a": "h1"}, {"a": "h2", "b": "h3"}, {"a": "h2"}]
        seq = destination.record_revision("r4", T0, {}, {}, {})
        assert seq == 4
    finally:
        source.close()
        destination.close()


def test_a_copy_into_a_ledger_that_holds_anything_is_refused_and_writes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    source = open_ledger(tmp_path / "source.db")
    try:
        _every_kind_of_run(source)
        claim(ledger, "mine", 0)
        with pytest.raises(LedgerError, match="not empty"):
            ledger.load(source.dump())
        assert [r.schedule for r in ledger.runs()] == ["mine"]
        assert ledger.last_revision() is None
    finally:
        source.close()


class _Unread(dict[str, str]):
    """A whole map that a revision recorded as changes must not read (it would cost O(N) bytes)."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole map was read")

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole map was read")

    def keys(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole map was read")

    def values(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole map was read")


SPEC = {"name": "a", "schedule": {"cron": "0 2 * * *"}, "run": {"command": ["x"]}}


def _base(ledger: Ledger, n: int = 50) -> tuple[int, dict[str, str]]:
    hashes = {f"s{i}": f"h{i}" for i in range(n)}
    seq = ledger.record_revision("r0", T0, {"add": n}, dict.fromkeys(hashes, SPEC), hashes)
    return seq, hashes


def test_a_revision_recorded_against_its_parent_stores_only_its_changes_and_reads_back_whole(
        ledger: Ledger) -> None:
    parent, hashes = _base(ledger)
    changes = {"s1": "h1b", "s2": None, "new": "hnew"}
    whole = {**hashes, "s1": "h1b", "new": "hnew"}
    del whole["s2"]
    seq = ledger.record_revision("r1", T0, {"change": 1}, {"s1": SPEC, "new": SPEC}, _Unread(whole),
                                 parent=parent, changes=changes)
    last = ledger.last_revision()
    assert last is not None
    assert (last.seq, last.revision, last.hashes) == (seq, "r1", whole)
    first = ledger.revision(parent)
    assert first is not None
    assert first.hashes == hashes
    assert last.specs(ledger)["new"] == SPEC
    assert [r[1] for r in ledger.revisions()] == ["r1", "r0"]
    assert ledger.revision(seq + 100) is None


def test_a_revision_whose_parent_is_gone_is_stored_whole(ledger: Ledger) -> None:
    _, hashes = _base(ledger, 5)
    seq = ledger.record_revision("r1", T0, {}, {}, {**hashes, "s0": "x"}, parent=12345, changes={"s0": "x"})
    got = ledger.revision(seq)
    assert got is not None
    assert got.hashes == {**hashes, "s0": "x"}


def test_pruning_keeps_the_newest_and_every_revision_a_run_refers_to_with_the_chain_it_needs(
        ledger: Ledger) -> None:
    parent, hashes = _base(ledger, 10)
    seqs = [parent]
    for i in range(1, 12):
        hashes = {**hashes, f"s{i % 10}": f"h{i}-v2", f"n{i}": f"hn{i}"}
        parent = ledger.record_revision(f"r{i}", T0, {}, {f"s{i % 10}": SPEC, f"n{i}": SPEC}, hashes,
                                        parent=parent, changes={f"s{i % 10}": f"h{i}-v2", f"n{i}": f"hn{i}"})
        seqs.append(parent)
    expected = {seq: got.hashes for seq in seqs if (got := ledger.revision(seq)) is not None}
    ledger.claim("s3", T0, attempt=1, cause=Cause.SCHEDULE, revision="r4", started_at=T0)  # a run under r4
    removed = ledger.prune_revisions(keep=3)
    assert removed == 4  # r0 to r3; r4 (a run refers to it) and everything after it stay
    kept = [r[0] for r in ledger.revisions(limit=100)]
    assert kept == sorted(seqs[4:], reverse=True)
    for seq in seqs[4:]:  # each still whole, though r4's base chain was pruned (it became a base)
        got = ledger.revision(seq)
        assert got is not None
        assert got.hashes == expected[seq]
    assert ledger.revision(seqs[0]) is None
    # Specs no kept revision refers to are gone; those still referred to stay.
    assert ledger.specs({"old": "h1"}) == {}  # s1 changed in r1: h1 only in r0
    assert ledger.specs({"s3": expected[seqs[-1]]["s3"]}) == {"s3": SPEC}
    # A later record against a kept parent still works, and a second prune keeps what is needed.
    ledger.record_revision("r12", T0, {}, {}, {}, parent=seqs[-1], changes={"n11": None})
    assert ledger.prune_revisions(keep=3) == 0  # r4 is still referred to
    last = ledger.last_revision()
    assert last is not None
    assert "n11" not in last.hashes
    assert last.hashes["n10"] == "hn10"


# ---- health (for /metrics) and the audit trail ------------------------------------------------------

def ended(ledger: Ledger, name: str, minute: int, status: RunStatus) -> int:
    run_id = ledger.record(name, T0 + timedelta(minutes=minute), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                           outcome=Outcome(status, T0 + timedelta(minutes=minute, seconds=5)))
    assert run_id is not None
    return run_id


def test_health_counts_failures_since_the_newest_success_and_dates_that_success(ledger: Ledger) -> None:
    failing = {RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED}
    ended(ledger, "a", 0, RunStatus.FAILED)
    ended(ledger, "a", 1, RunStatus.SUCCEEDED)
    ended(ledger, "a", 2, RunStatus.FAILED)
    ended(ledger, "a", 3, RunStatus.SKIPPED)  # not a failure, and does not end the streak either
    ended(ledger, "a", 4, RunStatus.TIMED_OUT)
    ended(ledger, "b", 0, RunStatus.FAILED)
    ended(ledger, "b", 1, RunStatus.FAILED)
    ended(ledger, "c", 0, RunStatus.SUCCEEDED)
    ended(ledger, "d", 0, RunStatus.MISSED)
    health = ledger.health(failing)
    assert health["a"].last_success == T0 + timedelta(minutes=1, seconds=5)
    assert health["a"].failures == 2
    assert (health["b"].last_success, health["b"].failures) == (None, 2)
    assert (health["c"].last_success, health["c"].failures) == (T0 + timedelta(seconds=5), 0)
    assert "d" not in health


def commit(sha: str = "a" * 40, author: str = "Dana") -> Commit:
    return Commit(sha, author, f"{author.lower()}@example.invalid", T0 - timedelta(hours=1), "shorter timeout")


def test_the_audit_trail_lists_revisions_newest_first_and_per_schedule_only_its_changes(ledger: Ledger) -> None:
    timeout = {"path": "timeout", "old": "10m", "new": "1m"}
    ledger.record_audit(1, "a" * 40, T0, commit("a" * 40, "Ann"), [SpecChange("x", "add"), SpecChange("y", "add")])
    ledger.record_audit(2, "b" * 40, T0 + timedelta(hours=1), commit("b" * 40, "Dana"),
                        [SpecChange("x", "change", (timeout,))])
    ledger.record_audit(3, "content:1234", T0 + timedelta(hours=2), None, [SpecChange("y", "remove")])
    every = ledger.audit()
    assert [r.seq for r in every] == [3, 2, 1]
    assert every[0].commit is None
    assert [c.schedule for c in every[2].changes] == ["x", "y"]
    x = ledger.audit("x")
    assert [(r.seq, r.commit.author if r.commit else None) for r in x] == [(2, "Dana"), (1, "Ann")]
    assert x[0].changes == (SpecChange("x", "change", (timeout,)),)
    assert x[0].commit == commit("b" * 40, "Dana")
    assert x[0].applied_at == T0 + timedelta(hours=1)
    assert [r.seq for r in ledger.audit("x", since=T0 + timedelta(minutes=30))] == [2]
    assert [r.seq for r in ledger.audit(limit=1)] == [3]
    assert ledger.audit("nobody") == []


def test_recording_a_revisions_audit_again_changes_nothing(ledger: Ledger) -> None:
    ledger.record_audit(7, "r", T0, commit(), [SpecChange("x", "add")])
    ledger.record_audit(7, "r", T0, commit(author="Eve"), [SpecChange("z", "add")])
    (only,) = ledger.audit()
    assert only.commit is not None
    assert only.commit.author == "Dana"
    assert only.changes == (SpecChange("x", "add"),)


def test_a_runs_usage_is_kept_by_finish_and_read_back_in_the_run_and_the_list(ledger: Ledger) -> None:
    measured, bare = claim(ledger), claim(ledger, minute=1)
    assert measured is not None
    assert bare is not None
    ledger.finish(measured, Outcome(RunStatus.FAILED, T0 + timedelta(seconds=2), exit_code=1,
                                    error="memory: over its memory limit (64Mi)", peak_memory=67_108_864,
                                    cpu_user=1.25, cpu_system=0.5))
    ledger.finish(bare, Outcome(RunStatus.SUCCEEDED, T0 + timedelta(seconds=1), exit_code=0))
    one = ledger.run(measured)
    assert one is not None
    assert (one.peak_memory, one.cpu_user, one.cpu_system) == (67_108_864, 1.25, 0.5)
    listed = {r.id: (r.peak_memory, r.cpu_user, r.cpu_system) for r in ledger.runs("a")}
    assert listed == {measured: (67_108_864, 1.25, 0.5), bare: (None, None, None)}


# ---- pauses -------------------------------------------------------------------------------------------


def test_a_pause_records_who_when_why_and_until_and_a_second_one_replaces_it(ledger: Ledger) -> None:
    from reconciler.core.policy import Pause

    assert ledger.pauses() == {}
    first = Pause("a", "alice", T0, "db migration", T0 + timedelta(hours=2))
    ledger.pause(first)
    ledger.pause(Pause("b", "bob", T0, ""))
    assert ledger.pauses() == {"a": first, "b": Pause("b", "bob", T0, "", None)}
    again = Pause("a", "carol", T0 + timedelta(minutes=5), "longer", None)
    ledger.pause(again)
    assert ledger.pauses()["a"] == again


def test_resume_deletes_the_pause_and_says_what_it_was(ledger: Ledger) -> None:
    from reconciler.core.policy import Pause

    p = Pause("a", "alice", T0, "why", None)
    ledger.pause(p)
    assert ledger.resume("a") == p
    assert ledger.resume("a") is None
    assert ledger.pauses() == {}


def test_pausing_forgets_pauses_that_expired_before_it(ledger: Ledger) -> None:
    from reconciler.core.policy import Pause

    ledger.pause(Pause("old", "alice", T0, "", T0 + timedelta(minutes=1)))
    ledger.pause(Pause("new", "bob", T0 + timedelta(hours=1), ""))
    assert set(ledger.pauses()) == {"new"}


def test_slot_runs_lists_the_slots_in_the_range_with_their_newest_attempts_status(ledger: Ledger) -> None:
    first = claim(ledger, minute=1)
    assert first is not None
    ledger.finish(first, Outcome(RunStatus.FAILED, T0))
    claim(ledger, minute=1, attempt=2, cause=Cause.RETRY)
    ledger.record("a", T0 + timedelta(minutes=2), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                  outcome=Outcome(RunStatus.SKIPPED, T0))
    claim(ledger, minute=3)
    claim(ledger, name="b", minute=2)
    assert ledger.slot_runs("a", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)) == {
        T0 + timedelta(minutes=1): RunStatus.RUNNING, T0 + timedelta(minutes=2): RunStatus.SKIPPED}


def test_recent_runs_are_each_schedules_newest_few_newest_first(ledger: Ledger) -> None:
    ids: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for i in range(30):
        name = "abc"[i % 3] if i < 27 else "a"
        run_id = claim(ledger, name=name, minute=i)
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus.FAILED if i % 2 else RunStatus.SUCCEEDED, T0 + timedelta(seconds=i)))
        ids[name].append(run_id)
    found = ledger.recent_runs(["a", "b", "missing", "a"], per=4)
    assert sorted(found) == ["a", "b"]  # no runs: left out; "c" was not asked for
    assert [r.id for r in found["a"]] == ids["a"][::-1][:4]
    assert [r.id for r in found["b"]] == ids["b"][::-1][:4]
    assert found["b"][0].status == ledger.run(ids["b"][-1]).status  # type: ignore[union-attr]
    assert [r.id for r in ledger.recent_runs(["c"], per=100)["c"]] == ids["c"][::-1]
    assert ledger.recent_runs(["a"], per=0) == {}
    assert ledger.recent_runs([], per=5) == {}


def test_status_counts_count_one_schedules_runs_since_a_slot(ledger: Ledger) -> None:
    for i in range(10):
        run_id = claim(ledger, name="a" if i < 8 else "b", minute=i)
        assert run_id is not None
        ledger.finish(run_id, Outcome(RunStatus.FAILED if i in (1, 6) else RunStatus.SUCCEEDED, T0))
    assert ledger.status_counts("a", T0) == {RunStatus.SUCCEEDED: 6, RunStatus.FAILED: 2}
    assert ledger.status_counts("a", T0 + timedelta(minutes=5)) == {RunStatus.SUCCEEDED: 2, RunStatus.FAILED: 1}
    assert ledger.status_counts("a", T0 + timedelta(hours=1)) == {}


# ---- operators' activity ------------------------------------------------------------------------------

def test_an_action_is_recorded_with_who_what_why_and_the_ledgers_own_clock(ledger: Ledger) -> None:
    from reconciler.ledger.base import Action

    before = datetime.now(UTC) - timedelta(seconds=5)  # the database's clock, on this host, give or take
    made = ledger.record_activity("alice", Action.PAUSE, ["a"], "freeze <b>", {"until": "2026-01-02T00:00:00Z"})
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert before <= made.at <= after
    assert made.at.tzinfo == UTC
    [read] = ledger.activity()
    assert read == made
    assert (read.who, read.action, read.targets, read.reason, read.details) == (
        "alice", Action.PAUSE, ("a",), "freeze <b>", {"until": "2026-01-02T00:00:00Z"})


def test_activity_is_listed_newest_first_paged_by_id_and_filtered_by_target(ledger: Ledger) -> None:
    from reconciler.ledger.base import Action

    one = ledger.record_activity("ops", Action.TRIGGER, ["a"])
    two = ledger.record_activity("ops", Action.BULK_PAUSE, ["a", "b"], "release", {"selector": {"team": "x"}})
    three = ledger.record_activity("cli-user", Action.RESUME, ["b"])
    assert one.id < two.id < three.id
    assert [x.id for x in ledger.activity()] == [three.id, two.id, one.id]
    assert [x.id for x in ledger.activity(limit=2)] == [three.id, two.id]
    assert [x.id for x in ledger.activity(before_id=two.id)] == [one.id]
    assert [x.id for x in ledger.activity("a")] == [two.id, one.id]
    assert [x.id for x in ledger.activity("b", before_id=three.id)] == [two.id]
    assert ledger.activity("nobody") == []
    assert ledger.activity()[1].details == {"selector": {"team": "x"}}


def test_an_action_with_a_nul_in_its_text_is_recorded_not_refused(ledger: Ledger) -> None:
    from reconciler.ledger.base import Action

    ledger.record_activity("ops", Action.PAUSE, ["a\x00b"], "why\x00", {"k": "v\x00"})
    [read] = ledger.activity()
    assert read.reason.startswith("why")
    assert read.targets[0].startswith("a")


# ---- pools (issue 18) ---------------------------------------------------------------------------


def test_a_pool_claim_is_refused_while_the_pool_is_full_and_succeeds_once_a_run_of_it_ends(ledger: Ledger) -> None:
    a = claim(ledger, name="a", pool="db", pool_size=2)
    b = claim(ledger, name="b", pool="db", pool_size=2)
    assert a is not None
    assert b is not None
    with pytest.raises(PoolFull) as full:
        claim(ledger, name="c", pool="db", pool_size=2)
    assert (full.value.pool, full.value.size, full.value.running) == ("db", 2, 2)
    assert ledger.runs("c") == []  # nothing written: the slot stays free
    assert ledger.pool_running() == {"db": 2}
    ledger.finish(a, Outcome(RunStatus.SUCCEEDED, T0))
    assert claim(ledger, name="c", pool="db", pool_size=2) is not None
    assert ledger.pool_running() == {"db": 2}


def test_a_larger_pool_size_lets_more_runs_in_at_once(ledger: Ledger) -> None:
    assert claim(ledger, name="a", pool="db", pool_size=1) is not None
    with pytest.raises(PoolFull):
        claim(ledger, name="b", pool="db", pool_size=1)
    assert claim(ledger, name="b", pool="db", pool_size=2) is not None  # pools.yaml grew: sizes are live


def test_a_slot_already_claimed_is_taken_not_refused_for_a_full_pool(ledger: Ledger) -> None:
    assert claim(ledger, name="a", pool="db", pool_size=1) is not None
    assert claim(ledger, name="a", pool="db", pool_size=1) is None


def test_only_running_runs_of_the_same_pool_count_towards_its_size(ledger: Ledger) -> None:
    assert claim(ledger, name="free") is not None  # no pool
    assert claim(ledger, name="other", pool="other", pool_size=1) is not None
    done = claim(ledger, name="a", minute=1, pool="db", pool_size=1)
    assert done is not None
    ledger.finish(done, Outcome(RunStatus.FAILED, T0))
    ledger.record("b", T0, attempt=1, cause=Cause.SCHEDULE, revision="r1", outcome=Outcome(RunStatus.MISSED, T0))
    assert claim(ledger, name="a", minute=2, pool="db", pool_size=1) is not None
    assert ledger.pool_running() == {"db": 1, "other": 1}


POOL_RACER = """
import sys, time
from datetime import UTC, datetime, timedelta
from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Outcome, PoolFull
led = open_ledger(sys.argv[1])
me = sys.argv[2]
t0 = datetime(2026, 1, 1, tzinfo=UTC)
i = tries = 0
deadline = time.monotonic() + 60
while i < 15 and tries < 5000 and time.monotonic() < deadline:
    tries += 1
    try:
        run_id = led.claim(me, t0 + timedelta(minutes=i), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                           started_at=t0, owner=me, pool="db", pool_size=2)
    except PoolFull:
        time.sleep(0.002)
        continue
    began = time.time()  # after the claim committed, and before the end is written: inside the run
    time.sleep(0.01)
    ended = time.time()
    led.finish(run_id, Outcome(RunStatus.SUCCEEDED, t0))
    print(began, ended)
    i += 1
led.close()
"""


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(b, 1) for b, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_processes_racing_for_a_pool_of_two_never_run_more_than_two_at_once(location: str) -> None:
    open_ledger(location).close()  # migrated before the race
    procs = [subprocess.Popen([sys.executable, "-c", POOL_RACER, location, f"p{i}"], stdout=subprocess.PIPE,
                              text=True) for i in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    intervals = [(float(b), float(e)) for out in outs for b, e in (line.split() for line in out.splitlines())]
    assert len(intervals) == 60  # each process ran its 15 slots in the end
    assert _most_at_once(intervals) == 2  # full, and never above


def test_threads_sharing_one_ledger_never_run_more_of_a_pool_than_its_size(ledger: Ledger) -> None:
    lock = threading.Lock()
    intervals: list[tuple[float, float]] = []
    barrier = threading.Barrier(6)

    def worker(me: str) -> None:
        barrier.wait(timeout=30)
        i = tries = 0
        while i < 10 and tries < 3000:
            tries += 1
            try:
                run_id = claim(ledger, name=me, minute=i, pool="db", pool_size=3)
            except PoolFull:
                time.sleep(0.002)
                continue
            assert run_id is not None
            began = time.time()
            time.sleep(0.005)
            ended = time.time()
            ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, T0))
            with lock:
                intervals.append((began, ended))
            i += 1

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(intervals) == 60
    assert _most_at_once(intervals) == 3
