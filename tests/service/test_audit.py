"""What the audit trail records for a revision, in-process: the plan against the ledger's previous
revision (not against what one process had live), and a commit only where the revision is one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.model import spec_hash
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, SpecChange
from reconciler.service.audit import changes, history, record

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def spec(name: str, timeout: str = "10m") -> dict[str, Any]:
    return {"name": name, "schedule": {"cron": "0 2 * * *"}, "run": {"command": ["/bin/true"], "timeout": timeout}}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def apply(ledger: Ledger, revision: str, specs: dict[str, dict[str, Any]], directory: Path) -> int:
    """What the daemon's recorder does for one applied revision."""
    hashes = {n: spec_hash(s) for n, s in specs.items()}
    previous = ledger.last_revision()
    seq = ledger.record_revision(revision, NOW, {}, specs, hashes)
    record(ledger, seq, revision, NOW, previous, hashes, specs.__getitem__, directory)
    return seq


def test_the_first_revision_adds_every_schedule(ledger: Ledger) -> None:
    specs = {"b": spec("b"), "a": spec("a")}
    got = changes(None, {n: spec_hash(s) for n, s in specs.items()}, specs.__getitem__, ledger)
    assert got == [SpecChange("a", "add"), SpecChange("b", "add")]


def test_a_revision_is_compared_with_the_ledgers_previous_one(ledger: Ledger, tmp_path: Path) -> None:
    apply(ledger, "content:1", {"a": spec("a"), "b": spec("b"), "c": spec("c")}, tmp_path)
    apply(ledger, "content:2", {"a": spec("a", "1m"), "c": spec("c"), "d": spec("d")}, tmp_path)
    (newest, first) = ledger.audit()
    assert newest.changes == (SpecChange("a", "change", ({"path": "run.timeout", "old": "10m", "new": "1m"},)),
                              SpecChange("b", "remove"), SpecChange("d", "add"))
    assert {c.schedule for c in first.changes} == {"a", "b", "c"}
    assert newest.commit is None  # not a commit: no author to name


def test_the_same_revision_applied_again_records_no_change(ledger: Ledger, tmp_path: Path) -> None:
    specs = {"a": spec("a")}
    apply(ledger, "content:1", specs, tmp_path)
    apply(ledger, "content:1", specs, tmp_path)  # a restart
    assert [len(r.changes) for r in ledger.audit()] == [0, 1]
    assert [c["action"] for c in history(ledger, "a")["changes"]] == ["add"]


def test_a_commit_git_cannot_find_is_recorded_without_author_but_with_its_plan(ledger: Ledger,
                                                                              tmp_path: Path) -> None:
    apply(ledger, "0" * 40, {"a": spec("a")}, tmp_path)  # tmp_path is no git repository
    (only,) = ledger.audit()
    assert (only.revision, only.commit, only.changes) == ("0" * 40, None, (SpecChange("a", "add"),))
