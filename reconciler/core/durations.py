"""Durations: `500ms`, `90s`, `15m`, `1h30m`, `2d`; a bare integer means seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

# Kept in sync with the schema's `duration` pattern (a test compares them). `(?![\s\S])` is the
# end of the text in Python and ECMA-262 alike; `$` in Python also matches before a final newline.
DURATION_PATTERN = r"^(?=[0-9])([0-9]+d)?([0-9]+h)?([0-9]+m(?!s))?([0-9]+s)?([0-9]+ms)?(?![\s\S])"
_DURATION = re.compile(DURATION_PATTERN)
_UNITS_MS = (86_400_000, 3_600_000, 60_000, 1000, 1)
# The longest duration anywhere (every, jitter, timeouts, deadlines, backoffs): a leap year. Longer
# is never meant, and this keeps slot, jitter and deadline arithmetic far inside datetime's range
# and every timeout within what sockets and waits accept. The schema's `maximum` says the same.
MAX_DURATION = timedelta(days=366)
MAX_SECONDS = int(MAX_DURATION.total_seconds())
MAX_TEXT = 32  # characters of a written duration (the schema's maxLength): never a 5,000-digit number


class DurationError(ValueError):
    pass


class DurationTooLong(DurationError):
    """Well-formed, but longer than MAX_DURATION."""


_SHAPE = "a duration is a string such as 90s, 15m or 1h30m, or a number of seconds"


def parse_duration(value: object) -> timedelta:
    """A timedelta of at most MAX_DURATION; DurationError for anything else (also a mapping or list)."""
    # JSON Schema's `integer` includes 5.0, so validate accepts it: read it as the integer it is.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DurationError(_SHAPE)
    if isinstance(value, int):
        if value < 0:
            raise DurationError("a duration cannot be negative")
        if value > MAX_SECONDS:
            raise DurationTooLong(f"{value} seconds is longer than {format_duration(MAX_DURATION)}: "
                                  f"a duration is at most {format_duration(MAX_DURATION)}")
        return timedelta(seconds=value)
    return _parse_text(value)


@lru_cache(maxsize=1024)
def _parse_text(value: str) -> timedelta:
    if len(value) > MAX_TEXT:
        raise DurationError(f"a duration is at most {MAX_TEXT} characters")
    m = _DURATION.match(value)
    if m is None:
        raise DurationError(
            f"{value!r} is not a duration: write a string such as 500ms, 90s, 15m, 1h30m or 2d"
        )
    ms = sum(int(g[: -2 if g.endswith("ms") else -1]) * unit
             for g, unit in zip(m.groups(), _UNITS_MS, strict=True) if g)
    if ms > MAX_SECONDS * 1000:  # before timedelta(), which overflows at 999,999,999 days
        # Quoted whole: it matched the pattern (digits and units, at most 32), so it hides nothing.
        raise DurationTooLong(f"{value} is longer than {format_duration(MAX_DURATION)}: "
                              f"a duration is at most {format_duration(MAX_DURATION)}")
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
