"""Several real `reconciler run` replicas on one ledger (a SQLite file, and a real PostgreSQL):
`concurrency: replace` stops a run another replica owns, and a replica on an older git revision
never runs what a newer revision, applied by another replica, changed or removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from reconciler.core.policy import RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import RunRecord
from tests.harness import Daemon, commit_all, git, init_repo, lines, wait_for
from tests.service.test_leases_daemon import Replica, daemons, location, runs

__all__ = ["daemons", "location"]  # the fixtures: daemons are SIGKILLed at the end, a ledger of each backend


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_outside_a_write(replica: Daemon, location: str) -> None:
    """SIGSTOP a replica, but not while it holds a SQLite ledger's write lock: stopped there, it would
    keep every replica from writing for as long as it stays stopped (a frozen replica inside a
    transaction; PostgreSQL's sessions share no such lock). Bounded: 50 tries."""
    import sqlite3

    for _ in range(50):
        replica.proc.send_signal(signal.SIGSTOP)
        if "://" in location:
            return
        probe = sqlite3.connect(location, timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # locked: let it finish its transaction and try again
            replica.proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()
    raise AssertionError("the replica held the ledger's write lock at every one of 50 tries")


def pid_of(pids: Path, run_id: int) -> int | None:
    return next((int(line.split()[0]) for line in lines(pids) if int(line.split()[1]) == run_id), None)


def test_replace_stops_a_run_that_another_replica_owns_through_the_ledger(
        tmp_path: Path, location: str, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    pids = tmp_path / "pids"
    (sched / "long.yaml").write_text(
        "name: long\nschedule: {every: 2s}\npolicy: {concurrency: replace}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $$ $RECONCILER_RUN_ID >> {pids}; exec sleep 60']}}\n")
    first = Replica(sched, tmp_path, location)
    daemons.append(first)
    first.wait_event("reconciler.started")
    second = Replica(sched, tmp_path, location)
    daemons.append(second)
    second.wait_event("reconciler.started")
    # A run the first replica owns; then the next slot must go to the second: the first is paused
    # (SIGSTOP) for that slot, well within its lease, so that only the second can claim it.
    started = first.wait_event("run.start", timeout=20)
    wait_for(lambda: pid_of(pids, started["run_id"]), timeout=10, what="the first replica's job running")
    stop_outside_a_write(first, location)
    try:
        wait_for(lambda: any(e["run_id"] > started["run_id"] for e in second.events("run.start")), timeout=20,
                 what="the second replica claiming a later slot")
    finally:
        first.proc.send_signal(signal.SIGCONT)
    asked = wait_for(lambda: next((e for e in second.events("run.stop_requested")
                                   if e["run_id"] >= started["run_id"]), None), timeout=10,
                     what="the second replica asking the first to stop its run")
    first.wait_event("replica.stop_requested", timeout=10)

    def ended() -> RunRecord | None:
        return next((r for r in runs(location, "long") if r.id == asked["run_id"] and r.status != "running"), None)

    old = wait_for(ended, timeout=15, what="the other replica's run ended")
    assert old.status == RunStatus.CANCELLED
    assert f"replaced by run {asked['by_run']} (concurrency: replace)" in (old.error or "")
    assert old.owner != next(r for r in runs(location, "long") if r.id == asked["by_run"]).owner
    pid = pid_of(pids, asked["run_id"])
    if pid is not None:  # else it was stopped before its shell got to say (a later slot of the first)
        wait_for(lambda: not alive(pid), timeout=10, what="the replaced job's process gone")
    assert first.stop() == 0
    assert second.stop() == 0


def _directory(repo: Path, marks: Path, tick: str, *, gone: bool) -> None:
    (repo / "tick.yaml").write_text(
        "name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
        f"run: {{command: [/bin/sh, -c, 'echo {tick} >> {marks}']}}\n")
    if gone:
        (repo / "gone.yaml").write_text(
            "name: gone\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
            f"run: {{command: [/bin/sh, -c, 'echo gone >> {marks}']}}\n")
    elif (repo / "gone.yaml").exists():
        (repo / "gone.yaml").unlink()


def refused_metric(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith('reconciler_claims_refused_total{reason="superseded"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_replica_on_an_older_git_revision_never_runs_what_a_newer_one_changed_or_removed(
        tmp_path: Path, location: str, daemons: list[Daemon]) -> None:
    new_dir, old_dir = tmp_path / "new" / "schedules", tmp_path / "old" / "schedules"
    marks = tmp_path / "marks"
    init_repo(new_dir)
    _directory(new_dir, marks, "old", gone=True)
    r1 = commit_all(new_dir, "first")
    subprocess.run(["git", "clone", "-q", str(new_dir), str(old_dir)], check=True, timeout=30)
    _directory(new_dir, marks, "new", gone=False)
    r2 = commit_all(new_dir, "tick changed, gone removed")
    assert git(old_dir, "rev-parse", "HEAD") == r1

    def stale_lines() -> int:
        return sum(1 for line in lines(marks) if line in ("old", "gone"))

    old = Replica(old_dir, tmp_path, location)  # the stale replica starts first: r1 is all the ledger knows
    daemons.append(old)
    old.wait_event("reconciler.started")
    wait_for(lambda: {"old", "gone"} <= set(lines(marks)), timeout=20, what="r1's schedules running")
    new = Replica(new_dir, tmp_path, location)
    daemons.append(new)
    new.wait_event("reconciler.started")

    def heads() -> dict[str, tuple[str | None, str]]:
        led = open_ledger(location)
        try:
            return led.revision_heads()
        finally:
            led.close()

    wait_for(lambda: heads() == {"tick": (heads()["tick"][0], r2), "gone": (None, r2)}, timeout=15,
             what="r2 the newest revision in the ledger")
    time.sleep(1.5)  # a run claimed just before r2 arrived may still be writing its line
    before = stale_lines()
    wait_for(lambda: lines(marks).count("new") >= 3, timeout=20, what="r2's tick running")
    time.sleep(2)
    assert stale_lines() == before, "the replica on r1 ran a schedule that r2 changed or removed"
    refused = old.wait_event("run.superseded", schedule="gone", timeout=10)
    assert refused["newest"] == r2
    assert refused["revision"] == r1
    old.wait_event("run.superseded", schedule="tick", timeout=10)
    assert old.wait_event("revision.stale", timeout=10)["newest"] == r2  # its status says it is stale
    # Said once per schedule, not once per slot.
    assert len([e for e in old.events("run.superseded") if e["schedule"] == "gone"]) == 1
    base = "http://" + old.wait_event("http.listening")["address"]
    assert refused_metric(base) >= 2

    # Restarted on r1, the stale replica changes nothing in the ledger and still runs none of it.
    assert old.stop() == 0
    again = Replica(old_dir, tmp_path, location)
    daemons.append(again)
    stale = again.wait_event("revision.stale", timeout=15)
    assert (stale["revision"], stale["newest"]) == (r1, r2)
    before = stale_lines()
    time.sleep(3)
    assert stale_lines() == before
    with urllib.request.urlopen("http://" + again.wait_event("http.listening")["address"] + "/api/v1/status",
                                timeout=5) as response:
        assert json.loads(response.read())["superseded_by"] == r2
    assert heads()["tick"][1] == r2
    led = open_ledger(location)
    try:
        last = led.last_revision()
        assert last is not None
        assert last.revision == r2
    finally:
        led.close()
    assert new.stop() == 0
    assert again.stop() == 0
