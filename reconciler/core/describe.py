"""Human-readable schedules, for `next`, plans and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.core.cron import NICKNAMES
from reconciler.core.durations import format_duration
from reconciler.core.timing import EPOCH, Timing


def describe_cron(expression: str) -> str:
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    text = expression.strip()
    return str(ExpressionDescriptor(NICKNAMES.get(text, text), options).get_description())


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
