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
        self._slots: dict[datetime, datetime] = {}

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            after = now - _TICK  # a slot falling exactly on `now` is still due
        else:
            after = self._slots.get(previous_fire_time, previous_fire_time)
            # Forget fire times already handed to the executor; keep the dict tiny.
            self._slots = {f: s for f, s in self._slots.items() if f > previous_fire_time}
        slot = self.timing.next_slot(after)
        if slot is None:
            return None
        fire = self.timing.fire_time(slot)
        self._slots[fire] = slot
        return fire

    def slot_for(self, fire_time: datetime) -> datetime:
        return self._slots.get(fire_time, fire_time)

    def __str__(self) -> str:
        return f"slots[{self.timing.kind}]"
