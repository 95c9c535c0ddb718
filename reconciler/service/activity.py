"""Operators' activity over HTTP: the list (/api/v1/activity) and the bulk pause and resume by label
selector, which answer in two steps: a first call lists what would change and a `confirm` code (a
digest of the names chosen), and a second call with that code does it. If the schedules chosen
changed in between (a new revision, relabelled schedules), the second call is refused with the new
list, so an operator never confirms one set and acts on another."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.core.describe import utc_text
from reconciler.core.model import Schedule
from reconciler.core.pausing import pause_until
from reconciler.core.policy import Pause
from reconciler.core.selectors import SelectorError, parse_selector_text, selects
from reconciler.ledger.base import Action, Activity, Ledger
from reconciler.service.operator import Refused


class Changed(Exception):
    """The confirm code is not that of the schedules the selector chooses now."""

    def __init__(self, preview: dict[str, Any]) -> None:
        super().__init__("the schedules this selector chooses changed since the dry run: confirm the new list")
        self.preview = preview


def activity_dict(a: Activity) -> dict[str, Any]:
    return {"id": a.id, "at": utc_text(a.at), "who": a.who, "action": a.action.value, "targets": list(a.targets),
            "reason": a.reason, "details": a.details}


def page(ledger: Ledger, schedule: str | None, before: int | None, limit: int) -> dict[str, Any]:
    items = ledger.activity(schedule, before_id=before, limit=limit)
    return {"items": [activity_dict(a) for a in items], "next_before": items[-1].id if len(items) == limit else None}


def parse_selector(text: str) -> dict[str, str]:
    """`key=value[,key=value…]`, every pair required (as `reconciler pause --selector`)."""
    try:
        return parse_selector_text(text)
    except SelectorError as e:
        raise Refused(str(e)) from None


def chosen(schedules: Mapping[str, Schedule], wanted: Mapping[str, str]) -> list[str]:
    return sorted(n for n, s in schedules.items() if selects(wanted, s.labels_dict))


def confirm_code(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise Refused(f"{key} must be a string")
    return value


def bulk(ledger: Ledger, schedules: Mapping[str, Schedule], data: Mapping[str, Any], now: datetime, who: str,
         action: Action) -> tuple[dict[str, Any], Activity | None]:
    """Body: {"selector": "k=v,…", "confirm": CODE, "reason": TEXT, "until"/"for" (pause only)}. Without
    `confirm`, the dry run; with it, the action, recorded as one activity (None when nothing was done)."""
    selector = _text(data, "selector")
    if not selector:
        raise Refused("selector is required: key=value, several separated by commas")
    names = chosen(schedules, parse_selector(selector))
    reason = _text(data, "reason") or ""
    until = None
    if action == Action.BULK_PAUSE:
        try:
            until = pause_until(now, _text(data, "until"), _text(data, "for"))
        except ValueError as e:
            raise Refused(str(e).replace("--", "")) from None
    code = confirm_code(names)
    given = _text(data, "confirm")
    preview = {"dry_run": given is None, "selector": selector, "schedules": names, "confirm": code}
    if given is None:
        return preview, None
    if given != code:
        raise Changed(preview)
    details: dict[str, Any] = {"selector": selector}
    if action == Action.BULK_PAUSE:
        for name in names:
            ledger.pause(Pause(name, who, now, reason, until))
        details["until"] = utc_text(until) if until is not None else None
    else:
        details["were_paused"] = sorted(n for n in names if ledger.resume(n) is not None)
    done = ledger.record_activity(who, action, names, reason, details) if names else None
    return preview, done
