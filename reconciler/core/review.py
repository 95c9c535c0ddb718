"""Warnings that deserve a reviewer's eye in a plan. Pure: the caller supplies recent runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from reconciler.core.model import Schedule
from reconciler.core.plan import Action, Plan


def fires_per_minute(s: Schedule, now: datetime, horizon: timedelta = timedelta(days=1), cap: int = 3000) -> float:
    """Average fires a minute over the next day (capped: we only need to know 'more than 1')."""
    count, slot, end = 0, s.timing.next_slot(now), now + horizon
    while slot is not None and slot < end and count < cap:
        count += 1
        slot = s.timing.next_slot(slot)
    return count / (horizon.total_seconds() / 60)


def observes_dst(zone: str, now: datetime) -> bool:
    tz = ZoneInfo(zone)
    offsets = {(now + timedelta(days=d)).astimezone(tz).utcoffset() for d in range(0, 366, 15)}
    return len(offsets) > 1


def warnings(plan: Plan, desired: Mapping[str, Schedule], now: datetime,
             last_runs: Mapping[str, datetime] | None = None) -> list[tuple[str, str]]:
    """(schedule, warning) pairs, in plan order."""
    out: list[tuple[str, str]] = []
    for change in plan.changes():
        name = change.name
        s = desired.get(name)
        if change.action is Action.REMOVE:
            last = (last_runs or {}).get(name)
            if last is not None and now - last < timedelta(days=1):
                out.append((name, f"removed, but it ran {_ago(now - last)} ago"))
            continue
        assert s is not None
        if s.enabled and fires_per_minute(s, now) > 1:
            out.append((name, "fires more than once a minute on average"))
        if s.timing.at is not None and s.timing.at <= now:
            out.append((name, "a one-time run in the past: it will never fire"))
        if change.action is Action.CHANGE and change.old is not None:
            old_zone = (change.old.get("schedule") or {}).get("timezone", "UTC")
            new_zone = s.timing.tz.key
            if old_zone != new_zone and isinstance(old_zone, str):
                try:
                    if not observes_dst(old_zone, now) and observes_dst(new_zone, now):
                        out.append((name, f"time zone {old_zone} -> {new_zone}: it now follows daylight saving "
                                          "(some local times are skipped or repeated twice a year)"))
                except (ValueError, KeyError, OSError):
                    pass
    return out


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"
