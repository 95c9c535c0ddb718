"""Durations: `500ms`, `90s`, `15m`, `1h30m`, `2d`; a bare integer means seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

# Kept in sync with the schema's `duration` pattern (a test compares them).
DURATION_PATTERN = r"^(?=[0-9])([0-9]+d)?([0-9]+h)?([0-9]+m(?!s))?([0-9]+s)?([0-9]+ms)?$"
_DURATION = re.compile(DURATION_PATTERN)
_UNITS_MS = (86_400_000, 3_600_000, 60_000, 1000, 1)


class DurationError(ValueError):
    pass


@lru_cache(maxsize=1024)
def parse_duration(value: object) -> timedelta:
    if isinstance(value, bool):
        raise DurationError("a duration is a string such as 90s, 15m or 1h30m, or a number of seconds")
    if isinstance(value, int):
        if value < 0:
            raise DurationError("a duration cannot be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise DurationError("a duration is a string such as 90s, 15m or 1h30m, or a number of seconds")
    m = _DURATION.match(value)
    if m is None:
        raise DurationError(
            f"{value!r} is not a duration: write a string such as 500ms, 90s, 15m, 1h30m or 2d"
        )
    ms = sum(int(g[: -2 if g.endswith("ms") else -1]) * unit
             for g, unit in zip(m.groups(), _UNITS_MS, strict=True) if g)
    return timedelta(milliseconds=ms)


def format_duration(td: timedelta) -> str:
    ms = round(td.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, suffix in zip(_UNITS_MS, ("d", "h", "m", "s", "ms"), strict=True):
        n, ms = divmod(ms, unit)
        if n:
            parts.append(f"{n}{suffix}")
    return "".join(parts)
