"""Our fire-time maths as an APScheduler trigger (never `CronTrigger`, whose dialect is wrong)."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from reconciler.core.timing import Timing

_TICK = timedelta(microseconds=1)
_KEEP_FIRES = 4  # fire -> slot entries kept: the due ones handed over at once, and the next


def latest_slot(timing: Timing, after: datetime, until: datetime) -> datetime | None:
    """The latest slot in (after, until], in O(log) `next_slot` calls however many slots lie
    between (a clock stepped years ahead must not make us walk through every one of them)."""
    width = timedelta(seconds=1)
    while True:
        start = after if width >= until - after else until - width
        slot = timing.next_slot(start)
        if slot is not None and slot <= until:
            # None in (until - width/2, until] (the try before), so few lie between here and there.
            while (following := timing.next_slot(slot)) is not None and following <= until:
                slot = following
            return slot
        if start == after:
            return None
        width *= 2


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
            if len(slots) > 2 * _KEEP_FIRES:  # keep the dict tiny, but never drop a fire still being handed over
                self._slots = slots = dict(sorted(slots.items())[-_KEEP_FIRES:])
        slot = self.timing.next_slot(after)
        if slot is None:
            return None
        if previous_fire_time is not None and self.timing.fire_time(slot) <= now:
            # The timer is behind (a forward clock step, a suspended machine): APScheduler would list
            # every slot up to now. Jump to the newest due one; the executor hands the gap to catch-up.
            slot = latest_slot(self.timing, slot - _TICK, now) or slot
            if slots is None:
                return slot
            fire = min(self.timing.fire_time(slot), now)
            slots[fire] = slot
            return fire
        if slots is None:
            return slot
        fire = self.timing.fire_time(slot)
        slots[fire] = slot
        return fire

    @property
    def keeps_slots(self) -> bool:
        """Whether it remembers fire -> slot (jitter): then it is more than its timing."""
        return self._slots is not None

    def slot_for(self, fire_time: datetime) -> datetime:
        return self._slots.get(fire_time, fire_time) if self._slots is not None else fire_time

    def __str__(self) -> str:
        return f"slots[{self.timing.kind}]"
