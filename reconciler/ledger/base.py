"""The ledger's contract: the truth of what happened. One contract-test suite runs against every
backend (SQLite and PostgreSQL), so nothing above this layer knows which one it has."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from reconciler.core.policy import Cause, RunStatus

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class LedgerError(Exception):
    """The ledger cannot be opened or used; the message names it and says why."""


class LedgerFull(LedgerError):
    """A write failed because the volume (or the database's size limit) is full. Transient: the
    same write may succeed once space is freed. The backend reports the change of state once
    through `on_write_state`, so callers need not log each failed write."""


@dataclass(frozen=True, slots=True)
class AppliedRevision:
    seq: int
    revision: str
    applied_at: datetime
    counts: dict[str, int]
    hashes: dict[str, str]  # name -> spec hash

    def specs(self, ledger: Ledger) -> dict[str, dict[str, Any]]:
        return ledger.specs(self.hashes)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    schedule: str
    slot: datetime
    attempt: int
    cause: Cause  # stored in the `trigger` column
    status: RunStatus
    revision: str
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    http_status: int | None
    error: str | None
    output: str | None = None
    output_dropped: int = 0

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: RunStatus
    finished_at: datetime
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    output: str | None = None
    output_dropped: int = 0


class Ledger(Protocol):
    """What every backend promises (tests/test_ledger_contract.py checks it against each one).

    - `claim` is the only way a run starts: one atomic insert under UNIQUE (schedule, slot, attempt).
      A `counted` claim adds one to the schedule's started count (`started_count`), in the same
      transaction; with `max_runs`, a counted claim fails once that count has reached it. Which
      claims count is the policy's (core/policy.py: `counted`), never the backend's.
      With `exclusive=True` (a `concurrency: forbid` schedule) it also fails while any other run of
      the schedule is `running`, and at most one exclusive run per schedule is ever `running`. The
      guarantee is the database's, for any number of processes: a partial unique index on
      `runs (schedule) WHERE status = 'running' AND exclusive` (SQLite and PostgreSQL alike), plus,
      in the same transaction, a check for non-exclusive runs still open from before the schedule
      became `forbid`.
    - `finish` may be deferred while the ledger cannot be written (`LedgerFull`): it is then
      written before the next write that succeeds, so a run never stays `running` (and never keeps
      holding a `forbid` schedule) because the disk was full when it ended.
    - A change between "writes fail for lack of space" and "writes work" is reported once through
      `on_write_state` (a message, then None), not on every write.
    """

    on_write_state: Callable[[str | None], None] | None

    def close(self) -> None: ...

    # revisions
    def record_revision(self, revision: str, applied_at: datetime, counts: Mapping[str, int],
                        specs: Mapping[str, dict[str, Any]], hashes: Mapping[str, str]) -> int: ...
    def last_revision(self) -> AppliedRevision | None: ...
    def revisions(self, limit: int = 20) -> list[AppliedRevision]: ...
    def specs(self, hashes: Mapping[str, str]) -> dict[str, dict[str, Any]]: ...

    # runs
    def claim(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
              started_at: datetime, owner: str = "", counted: bool = False, max_runs: int | None = None,
              exclusive: bool = False) -> int | None: ...
    def started_count(self, schedule: str) -> int: ...
    def finish(self, run_id: int, outcome: Outcome, *, keep: int | None = None) -> None: ...
    def record(self, schedule: str, slot: datetime, *, attempt: int, cause: Cause, revision: str,
               outcome: Outcome, started_at: datetime | None = None) -> int | None: ...
    def run(self, run_id: int) -> RunRecord | None: ...
    def runs(self, schedule: str | None = None, *, status: RunStatus | None = None, since: datetime | None = None,
             limit: int = 50, before_id: int | None = None) -> list[RunRecord]: ...
    # The newest slot of runs with one of `causes` (policy.TIMELINE: what catch-up starts after).
    def last_slot(self, schedule: str, causes: Collection[Cause]) -> datetime | None: ...
    def last_slots(self, causes: Collection[Cause]) -> dict[str, datetime]: ...
    def last_runs(self) -> dict[str, RunRecord]: ...
    def open_runs(self, schedule: str | None = None) -> list[tuple[RunRecord, str]]: ...
    def last_attempts(self, statuses: Collection[RunStatus], schedules: Collection[str]) -> list[RunRecord]: ...
    # Where a running run's processes live (opaque text from the engine), for the next start.
    def set_processes(self, run_id: int, processes: str) -> None: ...
    def processes(self, run_id: int) -> str | None: ...
    def prune(self, schedule: str, keep: int) -> int: ...
    def count_runs(self, schedule: str | None = None, status: RunStatus | None = None) -> int: ...
