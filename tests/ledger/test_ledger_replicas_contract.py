"""The contract of several replicas on one ledger (stale revisions, stop requests, who applied a
revision), on both backends: SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger.base import Ledger, Outcome, RevisionSuperseded
from tests.ledger.test_ledger_contract import T0, ledger, location

__all__ = ["ledger", "location"]  # the fixtures, shared with the main contract suite


def claim(ledger: Ledger, revision: str, spec_hash: str | None, name: str = "a", minute: int = 0,
          **kw: object) -> int | None:
    return ledger.claim(name, T0 + timedelta(minutes=minute), attempt=1, cause=Cause.SCHEDULE,
                        revision=revision, started_at=T0, spec_hash=spec_hash, **kw)  # type: ignore[arg-type]


def test_a_claim_of_an_older_revision_is_refused_once_a_newer_one_changed_the_schedule(ledger: Ledger) -> None:
    assert ledger.advance_revision("r1", {"a": "h1", "b": "hb"}, replica="old") is None
    assert ledger.advance_revision("r2", {"a": "h2", "b": "hb"}, replica="new") is None
    with pytest.raises(RevisionSuperseded) as refused:
        claim(ledger, "r1", "h1")
    assert (refused.value.schedule, refused.value.newest) == ("a", "r2")
    assert ledger.runs("a") == []  # nothing written: the newer replica can still claim the slot
    assert claim(ledger, "r1", "hb", name="b") is not None  # unchanged by r2: the old replica still runs it
    assert claim(ledger, "r2", "h2") is not None


def test_a_claim_of_an_older_revision_is_refused_once_a_newer_one_removed_the_schedule(ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1", "gone": "hg"}, replica="old")
    ledger.advance_revision("r2", {"a": "h1"}, replica="new")
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "r1", "hg", name="gone")
    assert ledger.revision_heads() == {"a": ("h1", "r2"), "gone": (None, "r2")}
    assert claim(ledger, "r1", "h1") is not None


def test_a_revision_the_ledger_has_not_seen_yet_is_never_refused(ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1"}, replica="x")
    # r2 is applied but not yet advanced (its replica records it off the hot path): it is the newest.
    assert claim(ledger, "r2", "h2") is not None
    assert claim(ledger, "r1", "h1", minute=1) is not None  # and the ledger cannot know yet that r1 is old
    assert claim(ledger, "r1", None, minute=2) is not None  # no hash given: no check (`trigger` of old)


def test_a_stale_replica_that_restarts_on_an_older_revision_changes_no_head(ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1"}, replica="old")
    ledger.advance_revision("r2", {"a": "h2"}, replica="new")
    assert ledger.advance_revision("r1", {"a": "h1"}, replica="old-restarted") == "r2"
    assert ledger.revision_heads() == {"a": ("h2", "r2")}
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "r1", "h1")
    assert ledger.advance_revision("r2", {"a": "h2"}, replica="another") is None  # r2's other replicas


def test_a_replica_moving_from_the_newest_revision_back_to_an_older_one_makes_it_the_newest(
        ledger: Ledger) -> None:
    # A revert of a plain directory gives the old content id again: the move itself says it is newer.
    ledger.advance_revision("content:1", {"a": "h1"}, replica="x")
    ledger.advance_revision("content:2", {"a": "h2"}, replica="x", previous="content:1")
    assert ledger.advance_revision("content:1", {"a": "h1"}, replica="x", previous="content:2") is None
    assert ledger.revision_heads() == {"a": ("h1", "content:1")}
    assert claim(ledger, "content:1", "h1") is not None
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "content:2", "h2", minute=1)


def test_a_superseded_claim_that_counts_towards_max_runs_counts_nothing(ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1"}, replica="old")
    ledger.advance_revision("r2", {"a": "h2"}, replica="new")
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "r1", "h1", counted=True, max_runs=5)
    assert ledger.started_count("a") == 0


def test_a_revision_records_the_replica_that_applied_it(ledger: Ledger, location: str) -> None:
    ledger.record_revision("r1", T0, {"added": 1}, {"a": {"name": "a"}}, {"a": "h1"}, replica="host:1:ab")
    last = ledger.last_revision()
    assert last is not None
    assert last.revision == "r1"
    assert _revision_replicas(location) == [("r1", "host:1:ab")]


def _revision_replicas(location: str) -> list[tuple[str, str]]:
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as conn:
            return [(r, p) for r, p in conn.execute("SELECT revision, replica FROM revisions ORDER BY seq")]
    import sqlite3

    with sqlite3.connect(location) as db:
        return list(db.execute("SELECT revision, replica FROM revisions ORDER BY seq"))


def test_a_stop_request_marks_other_owners_running_runs_and_their_owner_reads_it(ledger: Ledger) -> None:
    for r in ("mine", "theirs"):
        ledger.register_replica(r, host="h", pid=1, version="v", revision=None, lease=timedelta(seconds=20))
    theirs = claim(ledger, "r1", None, owner="theirs")
    ended = claim(ledger, "r1", None, minute=1, owner="theirs")
    mine = claim(ledger, "r1", None, minute=2, owner="mine")
    assert theirs is not None
    assert ended is not None
    assert mine is not None
    ledger.finish(ended, Outcome(RunStatus.SUCCEEDED, T0))
    assert ledger.stop_requests("theirs") == {}
    assert ledger.request_stop("a", owner="mine", reason="replaced by run 3") == [(theirs, "theirs")]
    assert ledger.request_stop("a", owner="mine", reason="again") == []  # the first request stands
    assert ledger.stop_requests("theirs") == {theirs: "replaced by run 3"}
    assert ledger.stop_requests("mine") == {}
    ledger.finish(theirs, Outcome(RunStatus.CANCELLED, T0))
    assert ledger.stop_requests("theirs") == {}  # ended: nothing left to stop


def test_replicas_show_how_long_ago_they_last_heartbeat_on_the_database_clock(ledger: Ledger) -> None:
    ledger.register_replica("r", host="h", pid=1, version="v", revision=None, lease=timedelta(seconds=20))
    (r,) = ledger.replicas()
    assert r.heartbeat_age is not None
    assert timedelta(0) <= r.heartbeat_age < timedelta(seconds=5)


def test_run_counts_count_the_runs_in_each_state(ledger: Ledger) -> None:
    assert ledger.run_counts() == {}
    first = claim(ledger, "r1", None)
    claim(ledger, "r1", None, minute=1)
    assert first is not None
    ledger.finish(first, Outcome(RunStatus.FAILED, T0))
    ledger.record("a", T0 + timedelta(minutes=2), attempt=1, cause=Cause.SCHEDULE, revision="r1",
                  outcome=Outcome(RunStatus.SKIPPED, T0))
    assert ledger.run_counts() == {RunStatus.FAILED: 1, RunStatus.RUNNING: 1, RunStatus.SKIPPED: 1}


def test_an_advance_given_the_changes_since_the_newest_writes_only_those_heads_and_refuses_as_a_whole_one(
        ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1", "b": "hb", "c": "hc"}, replica="x")
    assert ledger.advance_revision("r2", {"a": "h2", "b": "hb"}, replica="x", previous="r1",
                                   changes={"a": "h2", "c": None}) is None
    heads = ledger.revision_heads()
    assert {n: h for n, (h, _) in heads.items()} == {"a": "h2", "b": "hb", "c": None}
    # Only the changed heads were written: b still names the revision that last set it.
    assert {n: rev for n, (_, rev) in heads.items()} == {"a": "r2", "b": "r1", "c": "r2"}
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "r1", "h1")
    with pytest.raises(RevisionSuperseded):
        claim(ledger, "r1", "hc", name="c")
    assert claim(ledger, "r1", "hb", name="b") is not None  # unchanged by r2
    assert claim(ledger, "r2", "h2", minute=1) is not None


def test_changes_relative_to_a_revision_that_is_no_longer_the_newest_are_not_trusted(ledger: Ledger) -> None:
    ledger.advance_revision("r1", {"a": "h1", "b": "hb"}, replica="x")
    ledger.advance_revision("r2", {"a": "h2", "b": "hb2"}, replica="y", previous="r1")
    # x's changes are against r1, but y advanced r2 since: every head comes from x's whole map.
    assert ledger.advance_revision("r3", {"a": "h3", "b": "hb"}, replica="x", previous="r1",
                                   changes={"a": "h3"}) is None
    assert {n: h for n, (h, _) in ledger.revision_heads().items()} == {"a": "h3", "b": "hb"}
    assert claim(ledger, "r3", "hb", name="b") is not None
