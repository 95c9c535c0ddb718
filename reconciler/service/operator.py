"""The operator's actions over HTTP that write the ledger: pause, resume, backfill. Functions of the
ledger and a JSON body; the HTTP app checks the token and the schedule's name first."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.core.model import Schedule
from reconciler.core.pausing import parse_instant, pause_dict, pause_until
from reconciler.core.policy import Pause, pause_active
from reconciler.engine.backfill import ACTED, DEFAULT_MAX, BackfillRefused, plan, run
from reconciler.ledger.base import Ledger

if TYPE_CHECKING:
    from starlette.requests import Request

# Who a pause written through the API is recorded as when no token's name is given.
API_WHO = "api-token"


class Refused(ValueError):
    """A malformed or out-of-bounds request: answered 400 with the message."""


async def body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise Refused("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise Refused("the body must be a JSON object")
    return data


def text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise Refused(f"{key} must be a string")
    return value


def _int(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Refused(f"{key} must be an integer of at least 1")
    return value


def pauses(ledger: Ledger, now: datetime) -> dict[str, Any]:
    active = sorted((p for p in ledger.pauses().values() if pause_active(p, now)), key=lambda p: p.schedule)
    return {"items": [pause_dict(p, now) for p in active]}


def pause(ledger: Ledger, name: str, data: dict[str, Any], now: datetime, who: str = API_WHO) -> dict[str, Any]:
    """Body: {"reason": TEXT, "until": RFC 3339} or {"reason": TEXT, "for": "2h"}; both optional."""
    try:
        until = pause_until(now, text(data, "until"), text(data, "for"))
    except ValueError as e:
        raise Refused(str(e).replace("--", "")) from None
    p = Pause(name, who, now, text(data, "reason") or "", until)
    ledger.pause(p)
    return pause_dict(p, now)


def backfill(ledger: Ledger, s: Schedule, data: dict[str, Any], now: datetime,
             start: Callable[[str, datetime, int], int | None]) -> tuple[dict[str, Any], bool]:
    """Body: {"from": T1, "to": T2, "dry_run": bool, "parallel": N, "max": M}. The plan, and whether
    runs were started (in a thread of their own; their rows show in /api/v1/runs as they go)."""
    first, last = text(data, "from"), text(data, "to")
    if first is None or last is None:
        raise Refused("from and to are required (RFC 3339)")
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise Refused("dry_run must be true or false")
    parallel, max_slots = _int(data, "parallel", 1), _int(data, "max", DEFAULT_MAX)
    try:
        planned = plan(ledger, s, parse_instant(first, "from"), parse_instant(last, "to"), now, max_slots)
    except (BackfillRefused, ValueError) as e:
        raise Refused(str(e).replace("(--max)", "(max)")) from None
    started = not dry_run and any(p.plan in ACTED for p in planned)
    if started:
        threading.Thread(target=run, args=(ledger, s.name, planned, parallel, start), name="backfill",
                         daemon=True).start()
    return {"dry_run": dry_run, "slots": [p.as_dict() for p in planned]}, started
