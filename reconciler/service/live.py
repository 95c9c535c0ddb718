"""What is live: one frozen value that the daemon publishes whole at the end of each reconcile step.

The daemon builds the next `Live` and swaps it in with one reference assignment, so a reader that
takes it once per request (views, the HTTP app, metrics) sees one revision's schedules with that
revision's status, never a mix. Nothing in it is changed after it is published: the schedules and
hashes are shared with the snapshot they came from, not copied, and the runner holds the same map.

Next fire times are the timer's: it moves them at every fire, so a copy frozen at a reconcile step
would be stale a second later. `Live` carries the timer's reader for them instead; take them once
per request too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.core.model import Schedule
from reconciler.core.policy import ScheduleState, schedule_state
from reconciler.core.problems import Problem

NextFireTimes = Callable[[], Mapping[str, datetime | None]]  # name -> next fire time; None: paused
STATES = tuple(ScheduleState)


@dataclass(frozen=True)
class Status:
    """What operators need to see: what is live, and why a newer revision was not applied."""

    applied_revision: str | None = None
    applied_at: datetime | None = None
    attempted_revision: str | None = None
    attempted_at: datetime | None = None
    problems: tuple[Problem, ...] = ()
    error: str | None = None
    ready: bool = False
    ledger_error: str | None = None  # e.g. the disk is full: no slot can be claimed until it is not
    ledger_unreachable: str | None = None  # why the ledger cannot be reached: nothing is claimed, nor run
    superseded_by: str | None = None  # a newer revision another replica applied: this one is stale

    @property
    def serving(self) -> bool:
        """Ready to run slots: a revision applied, and the ledger answering (fail closed)."""
        return self.ready and self.ledger_unreachable is None

    @property
    def unready_reason(self) -> str:
        if not self.ready:
            return "no revision applied yet"
        return f"the ledger cannot be reached, so no slot is claimed or run: {self.ledger_unreachable}"

    @property
    def rejected(self) -> bool:
        """The newest revision seen is not the one that runs, and why is known."""
        return bool(self.problems or self.error) and self.attempted_revision != self.applied_revision


def no_fire_times() -> Mapping[str, datetime | None]:
    return {}


@dataclass(frozen=True, eq=False)  # compared by identity: a new step is a new value, and maps are not walked
class Live:
    status: Status = Status()
    schedules: Mapping[str, Schedule] = field(default_factory=dict)  # the applied revision's, by name
    hashes: Mapping[str, str] = field(default_factory=dict)  # name -> spec hash, for the same names
    completed: frozenset[str] = frozenset()  # max_runs reached: no longer fired, still listed
    next_fire_times: NextFireTimes = no_fire_times

    @property
    def revision(self) -> str | None:
        return self.status.applied_revision

    def state_of(self, s: Schedule, next_times: Mapping[str, datetime | None]) -> ScheduleState:
        return schedule_state(s.enabled, s.name in self.completed, next_times.get(s.name),
                              triggered=bool(s.deps.after))

    def counts(self, next_times: Mapping[str, datetime | None] | None = None) -> dict[str, int]:
        nxt = self.next_fire_times() if next_times is None else next_times
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for s in self.schedules.values():
            counts[self.state_of(s, nxt)] += 1
        return counts
