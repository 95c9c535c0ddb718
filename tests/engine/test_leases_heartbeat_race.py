"""A heartbeat racing a claim (found by benchmarks/chaos.py): a run claimed while the heartbeat's
statement was in flight is not in what that heartbeat renewed, and must not be taken for lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.core.policy import Cause
from reconciler.engine.leases import LeaseTimes, Replica
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger
from tests.engine.test_leases import Clock, Fenced, Logs

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = LeaseTimes(timedelta(seconds=5), timedelta(seconds=20))


class ClaimDuringHeartbeat:
    """The ledger, where another thread's claim commits just after the heartbeat's UPDATE saw the
    replica's runs, and the runner holds the run before the heartbeat's answer is read."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger, self.clock = ledger, clock
        self.replica: Replica | None = None
        self.claimed: list[int] = []

    def heartbeat(self, replica: str, *, lease: timedelta, revision: str | None = None) -> set[int] | None:
        renewed = self.ledger.heartbeat(replica, lease=lease, revision=revision)
        if self.replica is not None and not self.claimed:
            run_id = self.ledger.claim("a", T0, attempt=1, cause=Cause.SCHEDULE, revision="r", started_at=T0,
                                       owner=replica, lease=lease)
            assert run_id is not None
            self.replica.hold(run_id, self.clock())
            self.claimed.append(run_id)
        return renewed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_a_run_claimed_while_a_heartbeat_was_in_flight_is_not_fenced_by_that_heartbeat(tmp_path: Path) -> None:
    clock, fenced, logs = Clock(), Fenced(), Logs()
    ledger = open_ledger(tmp_path / "ledger.db")
    racing = ClaimDuringHeartbeat(ledger, clock)
    try:
        replica = Replica(racing, log=logs, clock=lambda: T0, times=TIMES, fence=fenced,
                          monotonic=clock)
        racing.replica = replica
        replica.start(threads=False)
        replica.beat()
        assert racing.claimed
        assert fenced.calls == []
        assert replica.held() == set(racing.claimed)  # still held: the next heartbeat renews it
        clock.t += 5
        replica.beat()
        assert fenced.calls == []
        assert replica.held() == set(racing.claimed)
    finally:
        ledger.close()
