"""Bring the timer (APScheduler) to a plan. One function, no loop: the service decides when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from apscheduler.job import Job

from reconciler.core.model import Schedule
from reconciler.core.plan import Plan, moves_fire_times
from reconciler.engine.timer import Timer, slot_job
from reconciler.engine.trigger import SlotTrigger


def apply_plan(timer: Timer, plan: Plan, desired: Mapping[str, Schedule], now: datetime) -> None:
    """Remove what is gone first, then change, then add; pause what is suspended."""
    for change in plan.removed:
        timer.remove(change.name)
    added = []
    for change in plan.changed:
        if moves_fire_times(change):
            timer.remove(change.name)
            added.append(desired[change.name])
        # metadata-only: the timer keeps its job untouched
    added.extend(desired[change.name] for change in plan.added)
    timer.put([job for s in added if (job := _job(timer, s, now)) is not None])


def _job(timer: Timer, schedule: Schedule, now: datetime) -> Job | None:
    trigger = SlotTrigger(schedule.timing)
    if not schedule.enabled:
        return slot_job(timer, schedule.name, trigger, None)
    first = trigger.get_next_fire_time(None, now)
    if first is None:
        return None  # completed: no slot left (an `at` in the past, or after `end`)
    return slot_job(timer, schedule.name, trigger, first)
