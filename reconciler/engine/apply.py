"""Bring the timer (APScheduler) to a plan. One function, no loop: the service decides when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from reconciler.core.model import Schedule
from reconciler.core.plan import Plan, moves_fire_times
from reconciler.engine.timer import Timer
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
    timer.put_slots(slot for s in added if (slot := _slot(s, now)) is not None)


def _slot(schedule: Schedule, now: datetime) -> tuple[str, SlotTrigger, datetime | None] | None:
    trigger = SlotTrigger(schedule.timing)
    if not schedule.enabled:
        return schedule.name, trigger, None
    first = trigger.get_next_fire_time(None, now)
    if first is None:
        return None  # completed: no slot left (an `at` in the past, or after `end`)
    return schedule.name, trigger, first
