"""Slots and fire times of a schedule: cron, every or at, clipped by start/end, with jitter.

A slot is the nominal instant (its identity, in UTC); the fire time is the slot plus a
deterministic jitter, so every process computes the same slots and the same delays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from reconciler.core.cron import CronExpr

_TICK = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Slots and fire times lie in [EPOCH, HORIZON]: a year short of datetime's end, so the wall time of
# any of them in any zone (offsets reach +-16h in old LMT rules) can be computed and shown.
HORIZON = datetime(9999, 1, 1, tzinfo=UTC)
# cron looks up to 400 years ahead for a matching day: from here on it can run off the calendar.
_CRON_EDGE = datetime(9999 - 401, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=256)
def _cron_next(cron: CronExpr, tz: ZoneInfo, after: datetime) -> datetime | None:
    """Schedules that share an expression (one object, from the loader's cache) and a zone share
    their next fire time: at start-up all of them ask from the same instant."""
    return cron.next_after(after, tz)


_NO_JITTER = timedelta(0)


@dataclass(frozen=True, slots=True)
class Timing:
    name: str
    tz: ZoneInfo
    cron: CronExpr | None = None
    every: timedelta | None = None
    anchor: datetime = EPOCH
    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not self.jitter:  # one zero for the fleet, not one per schedule
            object.__setattr__(self, "jitter", _NO_JITTER)

    @property
    def kind(self) -> str:
        return "cron" if self.cron else "every" if self.every else "at"

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after` (aware), in UTC, or None when there is no more.

        Total: a slot whose fire time (slot plus the longest jitter) would pass HORIZON is no slot,
        so no input makes this overflow."""
        if after < EPOCH:
            after = EPOCH - _TICK
        if self.start is not None and after < self.start:
            after = self.start - _TICK
        if after >= HORIZON:
            return None
        slot: datetime | None
        if self.cron is not None:
            try:
                slot = _cron_next(self.cron, self.tz, after)
            except (OverflowError, ValueError):
                if after < _CRON_EDGE:
                    raise  # not the end of the calendar: a bug, which must show
                slot = None
        elif self.every is not None:
            k = (after - self.anchor) // self.every + 1
            try:
                slot = self.anchor + k * self.every
            except OverflowError:  # past datetime's end: there is no next slot
                slot = None
        else:
            slot = self.at if self.at is not None and self.at > after else None
        if slot is None or (self.end is not None and slot > self.end) or self.jitter > HORIZON - slot:
            return None
        return slot

    def slots(self, after: datetime, count: int) -> Iterator[datetime]:
        slot: datetime | None = after
        for _ in range(count):
            assert slot is not None
            slot = self.next_slot(slot)
            if slot is None:
                return
            yield slot

    def jitter_for(self, slot: datetime) -> timedelta:
        if not self.jitter:
            return timedelta(0)
        key = f"{self.name}@{slot.astimezone(UTC).isoformat()}".encode()
        n = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        return timedelta(milliseconds=n % max(1, int(self.jitter.total_seconds() * 1000)))

    def fire_time(self, slot: datetime) -> datetime:
        return slot + self.jitter_for(slot)


@dataclass(frozen=True, slots=True)
class Missed:
    count: int  # slots strictly after `last` and strictly before `now` (capped at the limit)
    first: datetime
    latest: datetime
    before_latest: datetime  # the slot before `latest` (== first when there is one slot)
    capped: bool


def missed_slots(timing: Timing, last: datetime, now: datetime, limit: int = 1_000_000) -> Missed | None:
    """The slots a stopped reconciler missed: after the last one claimed, before now."""
    count, first, latest, before = 0, None, None, None
    slot = timing.next_slot(last)
    while slot is not None and slot < now and count < limit:
        count += 1
        first = first or slot
        before, latest = latest, slot
        slot = timing.next_slot(slot)
    if not count or first is None or latest is None:
        return None
    return Missed(count, first, latest, before or first, capped=count >= limit)
