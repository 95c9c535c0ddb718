"""Bring the timer (APScheduler) to a plan. One function, no loop: the service decides when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler

from reconciler.core.model import Schedule
from reconciler.core.plan import Plan, moves_fire_times
from reconciler.engine.executor import fire_placeholder
from reconciler.engine.trigger import SlotTrigger

JOB_DEFAULTS = {
    "misfire_grace_time": None,  # lateness is judged by the runner (policy.starting_deadline)
    "coalesce": False,  # every slot goes to the runner, which records skips and misses
    "max_instances": 1_000_000,  # concurrency is the runner's (policy.concurrency)
}


def apply_plan(scheduler: BaseScheduler, plan: Plan, desired: Mapping[str, Schedule],
               now: datetime | None = None) -> None:
    """Remove what is gone first, then change, then add; pause what is suspended."""
    for change in plan.removed:
        _remove(scheduler, change.name)
    for change in plan.changed:
        new = desired[change.name]
        if moves_fire_times(change):
            _remove(scheduler, change.name)
            _add(scheduler, new, now)
        # metadata-only: the timer keeps its job untouched
    for change in plan.added:
        _add(scheduler, desired[change.name], now)


def _remove(scheduler: BaseScheduler, name: str) -> None:
    if scheduler.get_job(name) is not None:
        scheduler.remove_job(name)


def _add(scheduler: BaseScheduler, schedule: Schedule, now: datetime | None) -> None:
    trigger = SlotTrigger(schedule.timing)
    kwargs: dict[str, datetime | None] = {}
    if not schedule.enabled:
        kwargs["next_run_time"] = None  # added paused: kept and listed, never fired
    elif now is not None:
        kwargs["next_run_time"] = trigger.get_next_fire_time(None, now)
        if kwargs["next_run_time"] is None:
            return  # completed: no slot left (an `at` in the past, or after `end`)
    scheduler.add_job(fire_placeholder, trigger=trigger, id=schedule.name, name=schedule.name,
                      **JOB_DEFAULTS, **kwargs)
