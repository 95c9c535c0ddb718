"""Named pools with real daemons (issue 18): a pool of size 1 shared by two replicas on a real
PostgreSQL, and by one daemon on SQLite. Judged from the ledger alone."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from reconciler.core.policy import RunStatus
from reconciler.ledger.base import RunRecord
from tests.harness import Daemon, wait_for
from tests.service.test_leases_daemon import Replica, daemons, runs

__all__ = ["daemons"]  # the fixture: daemons are SIGKILLed at the end

# Recorded times are each replica's clock around the claim and the finish, taken a few
# milliseconds outside the database's own order: two runs overlap only by more than this.
SLACK = timedelta(milliseconds=200)
WAITED = timedelta(milliseconds=300)  # a slot this long past its time was queued (not still arriving)


def pooled(sched: Path) -> None:
    """`high` every 3s and `low` every second, each job 1.5s, in one pool of one: there is room
    for every `high` slot and for about one `low` slot in three; the rest wait, then are missed."""
    sched.mkdir()
    (sched / "pools.yaml").write_text("# runs at most running at once, across replicas\ndb-heavy: {size: 1}\n")
    for name, every, priority in (("high", "3s", 10), ("low", "1s", 0)):
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{every: {every}}}\n"
            f"policy: {{pool: db-heavy, priority: {priority}, starting_deadline: 2500ms}}\n"
            "run: {command: [sleep, '1.5']}\n")


def check(location: str) -> None:
    high, low = runs(location, "high"), runs(location, "low")
    ran = [r for r in high + low if r.started_at is not None and r.status not in (RunStatus.MISSED, RunStatus.SKIPPED)]
    assert len([r for r in ran if r.schedule == "high"]) >= 3
    assert [r for r in ran if r.schedule == "low"], "some low slot found room"
    # Never two runs of the pool at once, whichever replica ran them.
    spans = sorted(ran, key=lambda r: (r.started_at, r.id))
    for i, b in enumerate(spans):
        for a in spans[:i]:
            assert a.finished_at is not None
            assert b.started_at is not None
            assert b.started_at >= a.finished_at - SLACK, f"runs {a.id} and {b.id} overlapped"
    # Priority: no low run started while a high slot had been waiting for room.
    for r in ran:
        if r.schedule != "low" or r.started_at is None:
            continue
        passed_over = [h for h in high if h.slot <= r.started_at - WAITED and _began(h) > r.started_at]
        assert not passed_over, f"low run {r.id} started while high slots {[h.slot for h in passed_over]} waited"
    missed = [r for r in low if r.status == RunStatus.MISSED and r.error and not r.error.startswith("the reconciler")]
    assert missed, "low slots past their deadline are missed"
    assert all(r.error is not None and r.error.startswith("pool db-heavy: could not start within starting_deadline")
               for r in missed), {r.error for r in missed}
    assert not [r for r in high if r.status == RunStatus.MISSED and "pool" in (r.error or "")]


def _began(r: RunRecord) -> datetime:
    """When a slot stopped waiting: its run started, or it was recorded (missed)."""
    out = r.started_at or r.finished_at
    assert out is not None
    return out


def settle(ds: list[Daemon], location: str, seconds: float) -> None:
    wait_for(lambda: len(runs(location, "high")) >= 1, timeout=20, what="a first run of the pool")
    time.sleep(seconds)  # bounded: the slots of these seconds are what the checks read
    for d in ds:
        d.stop()


def test_a_pool_of_one_shared_by_two_replicas_on_postgres_runs_one_at_a_time_by_priority(
        tmp_path: Path, postgres_url: str, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    pooled(sched)
    for _ in range(2):
        daemons.append(Replica(sched, tmp_path, postgres_url))
    for d in daemons:
        d.wait_event("reconciler.started", timeout=30)
    settle(daemons, postgres_url, 12)
    check(postgres_url)
    owners = {e["run_id"] for d in daemons for e in d.events("run.start")}
    assert len(owners) == len([r for r in runs(postgres_url, "high") + runs(postgres_url, "low")
                               if r.started_at is not None and r.status != RunStatus.MISSED])


def test_a_pool_of_one_on_sqlite_runs_one_at_a_time_by_priority(tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    pooled(sched)
    location = str(tmp_path / "ledger.db")
    d = Replica(sched, tmp_path, location)
    daemons.append(d)
    d.wait_event("reconciler.started", timeout=30)
    settle(daemons, location, 10)
    check(location)
    assert d.events("run.queued"), "slots waited for room, queued, not lost"


def get(base: str, path: str) -> str:
    with urllib.request.urlopen(base + path, timeout=5) as response:
        return str(response.read().decode())


def test_the_api_and_metrics_show_a_pools_size_running_and_queue_and_a_new_size_applies_live(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "pools.yaml").write_text("db-heavy: {size: 1}\n")
    for name in ("a", "b", "c"):
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{every: 1s}}\npolicy: {{pool: db-heavy, concurrency: allow, "
            "starting_deadline: 30s}\nrun: {command: [sleep, '3']}\n")
    location = str(tmp_path / "ledger.db")
    d = Replica(sched, tmp_path, location)
    daemons.append(d)
    base = "http://" + d.wait_event("http.listening", timeout=30)["address"]

    def pool() -> dict[str, object] | None:
        pools = json.loads(get(base, "/api/v1/pools"))["pools"]
        return pools[0] if pools and pools[0]["running"] == 1 and pools[0]["queued"] >= 2 else None

    seen = wait_for(pool, timeout=20, what="a full pool of one with slots queued")
    assert (seen["name"], seen["size"]) == ("db-heavy", 1)
    metrics = get(base, "/metrics")
    assert 'reconciler_pool_size{pool="db-heavy"} 1.0' in metrics
    assert 'reconciler_pool_running{pool="db-heavy"} 1.0' in metrics
    assert 'reconciler_pool_queued{pool="db-heavy"}' in metrics
    # A bigger pool, live: queued slots start at once, three at a time.
    (sched / "pools.yaml").write_text("db-heavy: {size: 3}\n")
    wait_for(lambda: json.loads(get(base, "/api/v1/pools"))["pools"][0]["running"] == 3, timeout=20,
             what="the new size applied")
    assert json.loads(get(base, "/api/v1/pools"))["pools"][0]["size"] == 3
