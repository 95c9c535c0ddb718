"""What an operator's pause or backfill request says, read from text: the CLI's options and the
API's JSON body share these, so both accept and refuse the same things. Raises ValueError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.core.describe import utc_text
from reconciler.core.durations import parse_duration
from reconciler.core.policy import Pause, pause_active


def parse_instant(text: str, option: str) -> datetime:
    """An RFC 3339 instant with its offset (`2026-12-01T08:00:00Z`)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option} {text!r}: write an RFC 3339 time such as 2026-12-01T08:00:00Z") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{option} {text!r}: give the offset too (Z or +01:00)")
    return value.astimezone(UTC)


def pause_until(now: datetime, until: str | None, for_: str | None) -> datetime | None:
    """When a pause ends by itself (None: at `resume`), from --until or --for."""
    if until is not None and for_ is not None:
        raise ValueError("--until and --for: give one of them")
    if for_ is not None:
        try:
            span = parse_duration(int(for_) if for_.isdigit() else for_)
        except ValueError as e:
            raise ValueError(f"--for {for_!r}: {e}") from None
        if span <= timedelta(0):
            raise ValueError(f"--for {for_!r}: must be longer than zero")
        return now + span
    if until is not None:
        end = parse_instant(until, "--until")
        if end <= now:
            raise ValueError(f"--until {until!r} has passed already")
        return end
    return None


def pause_dict(p: Pause, now: datetime) -> dict[str, Any]:
    """A pause as the API and `--format json` show it."""
    return {"schedule": p.schedule, "by": p.by, "at": utc_text(p.at), "reason": p.reason,
            "until": utc_text(p.until) if p.until is not None else None, "active": pause_active(p, now)}
