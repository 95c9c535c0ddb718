"""An APScheduler executor that only hands slots over: the timer thread never runs a job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.base import BaseExecutor

from reconciler.engine.trigger import SlotTrigger

Dispatch = Callable[[str, datetime, datetime], None]  # name, slot, fire time
Behind = Callable[[str, datetime, datetime], None]  # name, first and latest slot that came due at once
Clock = Callable[[], datetime]

# Several slots of one schedule due at one wake-up, the oldest this late: the timer fell behind
# (a forward clock step, a suspended machine), not two jittered fire times that happen to be close.
BEHIND_BY = timedelta(seconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class SlotExecutor(BaseExecutor):  # type: ignore[misc]
    def __init__(self, dispatch: Dispatch, behind: Behind | None = None, clock: Clock = utcnow) -> None:
        super().__init__()
        self._dispatch, self._behind, self._clock = dispatch, behind, clock

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        try:
            trigger: SlotTrigger = job.trigger
            if self._behind is not None and len(run_times) > 1 and self._clock() - run_times[0] >= BEHIND_BY:
                # Like a restart: the catch-up policy decides, never one run per slot passed over.
                self._behind(job.id, trigger.slot_for(run_times[0]), trigger.slot_for(run_times[-1]))
                return
            for fire_time in run_times:
                self._dispatch(job.id, trigger.slot_for(fire_time), fire_time)
        finally:
            # The runner owns concurrency (policy.concurrency), so APScheduler's instance count
            # is released at once.
            self._run_job_success(job.id, [])


def fire_placeholder() -> None:  # pragma: no cover - never called: SlotExecutor dispatches instead
    """APScheduler jobs need a callable; ours are run by the runner, not by APScheduler."""
