"""SQLite group commit: concurrent writes share one transaction, each still answered on its own."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger.base import Outcome
from reconciler.ledger.sqlite import SqliteLedger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _queued(ledger: SqliteLedger, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(ledger._pending) < n:
        assert time.monotonic() < deadline, "the writes were never queued"
        time.sleep(0.005)


def test_claims_queued_behind_a_write_share_one_commit_and_each_gets_its_own_run(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ids: dict[int, int | None] = {}

    def claim(i: int) -> None:
        ids[i] = ledger.claim(f"s{i}", T0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                              started_at=T0, owner="me")

    before = ledger.commits
    with ledger._lock:  # a write in progress: the claims queue behind it
        threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        _queued(ledger, 8)
    for t in threads:
        t.join(10)
    assert ledger.commits - before == 1
    assert len({v for v in ids.values() if v is not None}) == 8
    assert {r.schedule for r in ledger.runs()} == {f"s{i}" for i in range(8)}
    ledger.close()


def test_a_write_that_fails_in_a_group_leaves_the_others_committed(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")

    def broken(db: object) -> None:
        raise ValueError("a bug in one write")

    results: dict[str, object] = {}

    def good() -> None:
        results["good"] = ledger.record("s", T0, attempt=1, cause=Cause.SCHEDULE, revision="r",
                                        outcome=Outcome(RunStatus.MISSED, T0, error="late"))

    def bad() -> None:
        try:
            ledger._grouped(broken)
        except ValueError as e:
            results["bad"] = e

    with ledger._lock:
        threads = [threading.Thread(target=f) for f in (bad, good)]
        for t in threads:
            t.start()
        _queued(ledger, 2)
    for t in threads:
        t.join(10)
    assert isinstance(results["bad"], ValueError)
    assert isinstance(results["good"], int)
    ledger.close()
    reopened = SqliteLedger(tmp_path / "ledger.db")
    assert [r.status for r in reopened.runs("s")] == [RunStatus.MISSED]
    reopened.close()


@pytest.mark.parametrize("n", [1, 3])
def test_a_claim_returns_only_after_its_transaction_committed(tmp_path: Path, n: int) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    for i in range(n):
        run_id = ledger.claim("s", T0 + timedelta(seconds=i), attempt=1, cause=Cause.SCHEDULE, revision="r",
                              started_at=T0, owner="me")
        other = SqliteLedger(tmp_path / "ledger.db")  # another connection sees it at once
        assert other.run(run_id or 0) is not None
        other.close()
    ledger.close()
