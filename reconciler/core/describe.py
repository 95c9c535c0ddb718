"""Human-readable schedules, for `next`, plans and the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from reconciler.core.cron import NICKNAMES
from reconciler.core.durations import format_duration
from reconciler.core.timing import EPOCH, Timing


def describe_cron(expression: str) -> str:
    text = expression.strip()
    text = NICKNAMES.get(text, text)
    fields = text.split()
    if len(fields) == 5 and _extended(fields[2], fields[4]):
        return _describe_extended(fields)
    return _descriptor(text)


def _descriptor(text: str) -> str:
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    return str(ExpressionDescriptor(text, options).get_description())


# ---- the extensions beyond cronie, in our own words ---------------------------------------------
# cron-descriptor reads a list with L or # ("1,L", "2#3,5L") or a W beside a restricted weekday
# wrongly, and says neither OR nor AND as cronie's star rule means them: the day fields of an
# extended expression are put in words here, the times and months by cron-descriptor.

_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NAMES = {n[:3].lower(): i for i, n in enumerate(_WEEKDAYS[:7])}
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_DOM = re.compile(r"(?:(L)(?:-([0-9]+))?|([0-9]+))(W)?\Z", re.IGNORECASE)
_DOW = re.compile(r"([0-9]+|[A-Za-z]+)(?:(L)|#([0-9]+))\Z", re.IGNORECASE)


def _extended(dom: str, dow: str) -> bool:
    return any(c in dom for c in "LlWw") or "#" in dow or "l" in dow.lower()


def _describe_extended(fields: list[str]) -> str:
    minute, hour, dom, month, dow = fields
    times = _descriptor(f"{minute} {hour} * * *")
    with_month = _descriptor(f"{minute} {hour} * {month} *")
    months = with_month[len(times):] if with_month.startswith(times) else ""
    dom_words = None if dom == "*" else _list(_dom_element(e) for e in dom.split(","))
    dow_words = None if dow == "*" else _list(_dow_element(e) for e in dow.split(","))
    if dom_words is None or dow_words is None:
        days = f"on {dom_words or dow_words}"
    elif dom.startswith("*") or dow.startswith("*"):  # cronie's star rule: both must match
        days = f"on {dom_words}, if it is also {dow_words}"
    else:
        days = f"on {dom_words}, or on {dow_words}"
    return f"{times}, {days}{months}"


def _list(words: Iterable[str]) -> str:
    items = list(dict.fromkeys(words))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _days(n: int) -> str:
    return f"{n} day{'s' * (n != 1)}"


def _dom_element(element: str) -> str:
    m = _DOM.match(element) if any(c in element for c in "LlWw") else None
    if m is None:
        return _plain(element, weekdays=False)
    last, offset, day, nearest = m.groups()
    if last:
        n = int(offset or 0)
        if nearest:
            return "the last weekday of the month" if n == 0 else (
                f"the weekday nearest {_days(n)} before the last day of the month")
        return "the last day of the month" if n == 0 else f"the day {_days(n)} before the last day of the month"
    return f"the weekday nearest day {int(day)} of the month"


def _weekday(token: str) -> str:
    return _WEEKDAYS[int(token)] if token.isdigit() else _WEEKDAYS[_NAMES[token.lower()]]


def _dow_element(element: str) -> str:
    m = _DOW.match(element)
    if m is None:
        return _plain(element, weekdays=True)
    day, last, nth = m.groups()
    if last:
        return f"the last {_weekday(day)} of the month"
    return f"the {_ORDINALS[int(nth) - 1]} {_weekday(day)} of the month"


def _plain(element: str, weekdays: bool) -> str:
    """A plain list element of a day field: '5', '1-5', '1-31/2', '*', '*/2', or 'mon-fri'."""
    base, _, step = element.partition("/")
    every = f"every {_nth(int(step))} day" if step else "every day"
    if base == "*":
        return f"{every} of the {'week' if weekdays else 'month'}"
    if "-" in base:
        a, b = base.split("-", 1)
        span = f"{_weekday(a)} through {_weekday(b)}" if weekdays else f"days {a} through {b}"
        return f"{every} of {span}" if step else span
    return _weekday(base) if weekdays else f"day {base}"


def _nth(n: int) -> str:
    if n == 1:
        return "single"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe(timing: Timing) -> str:
    if timing.cron is not None:
        text = describe_cron(timing.cron.source)
    elif timing.every is not None:
        text = f"Every {format_duration(timing.every)}"
        if timing.anchor != EPOCH:
            text += f", aligned to {utc_text(timing.anchor)}"
    else:
        assert timing.at is not None
        text = f"Once, at {local_text(timing.at, timing)}"
    if timing.jitter:
        text += f", plus up to {format_duration(timing.jitter)} of jitter"
    return text


def utc_text(instant: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second (or finer when it has a fraction)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_text(instant: datetime, timing: Timing) -> str:
    local = instant.astimezone(timing.tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({local:%a})"


def relative(instant: datetime, now: datetime) -> str:
    delta = instant - now
    future = delta >= timedelta(0)
    s = int(abs(delta).total_seconds())
    parts = []
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        n, s = divmod(s, unit)
        if n:
            parts.append(f"{n}{name}")
        if len(parts) == 2:
            break
    text = "".join(parts) or "0s"
    return f"in {text}" if future else f"{text} ago"
