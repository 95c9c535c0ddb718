"""`Ledger.dump` and `load` copy everything a ledger holds but its replicas: besides runs, revisions,
specs and counters (tests/ledger/test_ledger_contract.py), the operators' pauses, the audit trail,
the activity list, each run's pool and who applied each revision, in both directions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.core.policy import Pause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Action, Commit, Ledger, LedgerError, Outcome, SpecChange
from tests.ledger.test_ledger_contract import T0, claim
from tests.ledger.test_ledger_replicas_contract import _revision_replicas


def _operated(led: Ledger) -> None:
    seq = led.record_revision("r1", T0, {"added": 2}, {"a": {"name": "a"}, "b": {"name": "b"}},
                              {"a": "h1", "b": "h2"}, replica="host:1:ab")
    led.record_audit(seq, "r1", T0, Commit("c" * 40, "Ann", "ann@example.org", T0 - timedelta(hours=1), "add a, b"),
                     [SpecChange("a", "add", ({"path": "schedule.every", "old": None, "new": "1h"},)),
                      SpecChange("b", "add")])
    led.pause(Pause("a", "alice", T0, "database upgrade", T0 + timedelta(days=1)))
    led.pause(Pause("b", "bob", T0 + timedelta(minutes=1), "until we know why"))
    led.record_activity("alice", Action.PAUSE, ["a"], "database upgrade", {"until": "2026-01-02T00:00:00Z"})
    led.record_activity("ops-bot", Action.BULK_RESUME, ["c", "d"], "")
    running = claim(led, "a", 0, pool="db", pool_size=2)
    done = claim(led, "b", 1, pool="db", pool_size=2)
    assert running is not None
    assert done is not None
    led.finish(done, Outcome(RunStatus.SUCCEEDED, T0 + timedelta(minutes=2), exit_code=0))


def _kept(led: Ledger) -> tuple[object, ...]:
    return led.pauses(), led.audit(), led.audit("a"), led.activity(), led.pool_running()


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_a_copy_keeps_pauses_the_audit_trail_the_activity_each_runs_pool_and_who_applied_each_revision(
        direction: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    sqlite_path, url = str(tmp_path / "ledger.db"), str(request.getfixturevalue("postgres_url"))
    src_at, dst_at = (sqlite_path, url) if direction.startswith("sqlite") else (url, sqlite_path)
    source, destination = open_ledger(src_at), open_ledger(dst_at)
    try:
        _operated(source)
        destination.load(source.dump())
        assert _kept(destination) == _kept(source)
        assert destination.pool_running() == {"db": 1}
        assert len(destination.pauses()) == 2
        assert len(destination.activity()) == 2
        assert _revision_replicas(dst_at) == [("r1", "host:1:ab")]
        # Ids go on after the copied ones.
        newest = max(a.id for a in source.activity())
        assert destination.record_activity("carol", Action.RESUME, ["a"]).id > newest
    finally:
        source.close()
        destination.close()


@pytest.mark.parametrize("what", ["pause", "activity"])
def test_a_copy_into_a_ledger_with_a_pause_or_an_action_is_refused_and_writes_nothing(
        what: str, tmp_path: Path) -> None:
    source, destination = open_ledger(tmp_path / "source.db"), open_ledger(tmp_path / "destination.db")
    try:
        _operated(source)
        if what == "pause":
            destination.pause(Pause("z", "zed", T0))
        else:
            destination.record_activity("zed", Action.TRIGGER, ["z"])
        with pytest.raises(LedgerError, match="not empty"):
            destination.load(source.dump())
        assert destination.runs() == []
        assert destination.audit() == []
    finally:
        source.close()
        destination.close()
