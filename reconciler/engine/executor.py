"""An APScheduler executor that only hands slots over: the timer thread never runs a job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor

from reconciler.engine.trigger import SlotTrigger

Dispatch = Callable[[str, datetime, datetime], None]  # name, slot, fire time


class SlotExecutor(BaseExecutor):  # type: ignore[misc]
    def __init__(self, dispatch: Dispatch) -> None:
        super().__init__()
        self._dispatch = dispatch

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        try:
            trigger: SlotTrigger = job.trigger
            for fire_time in run_times:
                self._dispatch(job.id, trigger.slot_for(fire_time), fire_time)
        finally:
            # The runner owns concurrency (policy.concurrency), so APScheduler's instance count
            # is released at once.
            self._run_job_success(job.id, [])


def fire_placeholder() -> None:  # pragma: no cover - never called: SlotExecutor dispatches instead
    """APScheduler jobs need a callable; ours are run by the runner, not by APScheduler."""
