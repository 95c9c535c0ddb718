"""The live value: one frozen `Live` published whole by each reconcile step, in-process (one
reconcile step is a plain function of a snapshot)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.ledger import open_ledger
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.live import Live, Status
from reconciler.service.log import make_log
from tests.harness import wait_for

YEARLY = "schedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n"
BAD = "name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [/bin/true]}\n"


class Setup(NamedTuple):
    daemon: Reconciler
    directory: Path

    def step(self) -> bool:
        return self.daemon.reconcile(self.daemon.source.full(datetime.now(UTC)))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    sched = tmp_path / "schedules"
    sched.mkdir()
    for name in ("a", "b"):
        (sched / f"{name}.yaml").write_text(f"name: {name}\n{YEARLY}")
    ledger = open_ledger(tmp_path / "ledger.db")
    daemon = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", io.StringIO()),
                        lambda: datetime.now(UTC))
    daemon.start()
    try:
        yield Setup(daemon, sched)
    finally:
        daemon.stop()
        ledger.close()


def test_each_reconcile_step_publishes_a_new_live_value_and_leaves_the_old_one_whole(setup: Setup) -> None:
    before = setup.daemon.live
    revision, names = before.revision, set(before.schedules)
    assert names == {"a", "b"}
    (setup.directory / "c.yaml").write_text(f"name: c\n{YEARLY}")
    assert setup.step() is True
    after = setup.daemon.live
    assert after is not before
    assert (before.revision, set(before.schedules)) == (revision, names)  # a reader holding it sees no change
    assert set(after.schedules) == {"a", "b", "c"}
    assert after.revision != revision
    assert set(after.next_fire_times()) == {"a", "b", "c"}  # the timer holds what the value says is live
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.schedules = {}  # type: ignore[misc]


def test_a_change_shares_the_snapshots_maps_instead_of_copying_them(setup: Setup) -> None:
    (setup.directory / "c.yaml").write_text(f"name: c\n{YEARLY}")
    snapshot = setup.daemon.source.full(datetime.now(UTC))
    assert setup.daemon.reconcile(snapshot) is True
    live = setup.daemon.live
    # O(1) to publish, whatever the number of schedules: 10,000 entries are not copied per change.
    assert live.schedules is snapshot.schedules
    assert live.hashes is snapshot.hashes


def test_a_rejected_revision_is_published_with_what_still_runs(setup: Setup) -> None:
    before = setup.daemon.live
    (setup.directory / "broken.yaml").write_text(BAD)
    assert setup.step() is False
    after = setup.daemon.live
    assert after.schedules is before.schedules
    assert after.revision == before.revision
    assert after.status.attempted_revision != after.revision
    assert after.status.rejected
    assert [Path(p.path).name for p in after.status.problems] == ["broken.yaml"]


def test_a_schedule_that_reaches_max_runs_is_published_completed_and_no_longer_fired(tmp_path: Path) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "once.yaml").write_text("name: once\nschedule: {every: 1s}\nrun: {command: [/bin/true]}\n"
                                     "policy: {max_runs: 1}\n")
    ledger = open_ledger(tmp_path / "ledger.db")
    daemon = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", io.StringIO()),
                        lambda: datetime.now(UTC))
    daemon.start()
    try:
        wait_for(lambda: "once" in daemon.live.completed, timeout=10, what="max_runs to be reached")
        assert "once" not in daemon.timer.next_fire_times()
        assert daemon.live.counts() == {"active": 0, "suspended": 0, "completed": 1}
    finally:
        daemon.stop()
        ledger.close()


def schedule(name: str, **fields: object) -> Schedule:
    built = build_from_spec({"name": name, "schedule": {"every": "1h"}, "run": {"command": ["true"]}, **fields},
                            "test", Loader())
    assert built is not None
    return built


def test_a_schedule_is_suspended_completed_or_active() -> None:
    fire = datetime(2030, 1, 1, tzinfo=UTC)
    schedules = {"on": schedule("on"), "off": schedule("off", enabled=False), "done": schedule("done"),
                 "spent": schedule("spent")}
    live = Live(schedules=schedules, completed=frozenset({"done"}),
                next_fire_times=lambda: {"on": fire, "off": None, "done": fire, "spent": None})
    nxt = live.next_fire_times()
    assert {n: live.state_of(s, nxt) for n, s in schedules.items()} == {
        "on": "active", "off": "suspended", "done": "completed", "spent": "completed"}
    assert live.counts() == {"active": 1, "suspended": 1, "completed": 2}


@pytest.mark.parametrize(("status", "rejected"), [
    (Status(), False),
    (Status(applied_revision="r1", attempted_revision="r1"), False),
    (Status(applied_revision="r1", attempted_revision="r2", error="refused: ..."), True),
    (Status(applied_revision="r1", attempted_revision="r1", error="waiting for the directory"), False),
])
def test_a_revision_is_rejected_when_the_newest_seen_is_not_what_runs_and_why_is_known(
        status: Status, rejected: bool) -> None:
    assert status.rejected is rejected


def test_a_live_value_before_the_first_revision_is_empty_and_not_ready() -> None:
    live = Live()
    assert (live.revision, live.status.ready, dict(live.schedules), live.counts()) == (
        None, False, {}, {"active": 0, "suspended": 0, "completed": 0})
