"""Our fire-time maths as an APScheduler trigger (never `CronTrigger`, whose dialect is wrong)."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from reconciler.core.timing import Timing

_TICK = timedelta(microseconds=1)


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at each slot plus its jitter, and remembers which slot a fire time belongs to."""

    __slots__ = ("_slots", "timing")

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        # Without jitter a fire time is its slot; only jittered schedules remember the mapping
        # (10,000 triggers each with a dict cost megabytes for nothing).
        self._slots: dict[datetime, datetime] | None = {} if timing.jitter else None

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        slots = self._slots
        if previous_fire_time is None:
            after = now - _TICK  # a slot falling exactly on `now` is still due
        elif slots is None:
            after = previous_fire_time
        else:
            after = slots.get(previous_fire_time, previous_fire_time)
            # Forget fire times already handed to the executor; keep the dict tiny.
            self._slots = slots = {f: s for f, s in slots.items() if f > previous_fire_time}
        slot = self.timing.next_slot(after)
        if slot is None:
            return None
        if slots is None:
            return slot
        fire = self.timing.fire_time(slot)
        slots[fire] = slot
        return fire

    def slot_for(self, fire_time: datetime) -> datetime:
        return self._slots.get(fire_time, fire_time) if self._slots is not None else fire_time

    def __str__(self) -> str:
        return f"slots[{self.timing.kind}]"
