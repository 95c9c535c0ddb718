"""What the daemon says about a rejected revision and about the one that ends the rejection
(in-process: one reconcile step is a plain function of a snapshot)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from reconciler.ledger import open_ledger
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.log import make_log
from tests.harness import wait_for

GOOD = "name: a\nschedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n"
BAD = "name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [/bin/true]}\n"


class Setup(NamedTuple):
    daemon: Reconciler
    directory: Path
    stream: io.StringIO
    now: list[datetime]

    def step(self, advance: float = 1.0) -> bool:
        self.now[0] += timedelta(seconds=advance)
        return self.daemon.reconcile(self.daemon.source.full(self.now[0]))

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = (json.loads(line) for line in self.stream.getvalue().splitlines())
        return [e for e in lines if e["event"] == kind]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(GOOD)
    stream, now = io.StringIO(), [datetime.now(UTC)]
    ledger = open_ledger(tmp_path / "ledger.db")
    daemon = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", stream), lambda: now[0])
    daemon.start()
    try:
        yield Setup(daemon, sched, stream, now)
    finally:
        daemon.stop()
        ledger.close()


@pytest.mark.parametrize("fix", ["revert", "correct"])
def test_fixing_a_rejected_revision_logs_that_the_daemon_applied_again(setup: Setup, fix: str) -> None:
    applied = setup.daemon.live.status.applied_revision
    (setup.directory / "b.yaml").write_text(BAD)
    assert setup.step() is False
    rejected = setup.daemon.live.status.attempted_revision
    assert rejected != applied
    if fix == "revert":  # the same content as what runs: nothing for the timer to change
        (setup.directory / "b.yaml").unlink()
    else:
        (setup.directory / "b.yaml").write_text(BAD.replace("30 2", "28 2"))
    assert setup.step() is True
    (recovered,) = setup.events("revision.recovered")
    assert recovered["revision"] == setup.daemon.live.status.applied_revision
    assert recovered["rejected"] == rejected
    assert (setup.daemon.live.status.applied_revision == applied) is (fix == "revert")
    assert setup.step() is True
    assert len(setup.events("revision.recovered")) == 1  # said once, not on every rescan


def test_a_revision_applied_without_an_earlier_rejection_logs_no_recovery(setup: Setup) -> None:
    (setup.directory / "b.yaml").write_text(GOOD.replace("name: a", "name: b"))
    assert setup.step() is True
    assert setup.events("revision.applied")
    assert setup.events("revision.recovered") == []


def test_a_rejected_revision_keeps_the_time_it_was_first_seen(setup: Setup) -> None:
    (setup.directory / "b.yaml").write_text(BAD)
    assert setup.step() is False
    first_seen = setup.now[0]
    assert setup.step(60) is False  # a rescan finds the same revision again
    assert setup.daemon.live.status.attempted_at == first_seen
    (setup.directory / "b.yaml").write_text(BAD.replace("'0 0", "'1 0"))
    assert setup.step() is False  # another rejected revision is seen anew
    assert setup.daemon.live.status.attempted_at == setup.now[0]


@pytest.mark.parametrize("before", ["nothing ran", "the ledger's revision ran"])
def test_the_directory_appearing_is_a_recovery_only_if_something_ran_before(tmp_path: Path, before: str) -> None:
    sched = tmp_path / "gs" / "schedules"
    ledger = open_ledger(tmp_path / "ledger.db")
    if before == "the ledger's revision ran":  # an earlier process applied the same file
        sched.mkdir(parents=True)
        (sched / "a.yaml").write_text(GOOD)
        first = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", io.StringIO()),
                           lambda: datetime.now(UTC))
        first.start()
        first.stop()
        (sched / "a.yaml").unlink()
        sched.rmdir()
    stream = io.StringIO()
    daemon = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", stream),
                        lambda: datetime.now(UTC))
    daemon.start()
    stop = threading.Event()
    watcher = threading.Thread(target=daemon.watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        wait_for(lambda: '"source.waiting"' in stream.getvalue(), what="the daemon to wait for the directory")
        # It appears whole, as git-sync's worktree does: an empty directory seen between a mkdir
        # and the file's write would be refused (it holds no schedule), and the file a recovery.
        staged = tmp_path / "staged"
        staged.mkdir()
        (staged / "a.yaml").write_text(GOOD)
        sched.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(sched)
        wait_for(lambda: daemon.live.status.error is None and daemon.live.status.attempted_revision is not None,
                 what="the directory to be applied")
    finally:
        stop.set()
        watcher.join(10)
        daemon.stop()
        ledger.close()
    recovered = [e for e in map(json.loads, stream.getvalue().splitlines()) if e["event"] == "revision.recovered"]
    assert len(recovered) == (before != "nothing ran")
