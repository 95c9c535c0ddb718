"""The OpenAPI description of service/pictures.py's routes, merged into service/openapi.py's document.

Kept beside, not inside, the shared document so that the pictures and other work on the API touch
different lines; the schemas are as exact as the document's own (`additionalProperties: false`).
"""

from __future__ import annotations

from typing import Any

from reconciler.core.policy import RUN_STATES, Cause
from reconciler.service import pictures
from reconciler.service.openapi import (
         _BOOL,
         _INT,
         _NAME,
         _NUM,
         _STR,
         _TIME,
         _get,
         _json,
         _null,
         _obj,
         _query,
         _ref,
         _text,
)

_CELL = {"id": _INT, "slot": _TIME, "status": {"enum": [str(s) for s in RUN_STATES]}, "attempt": _INT,
         "trigger": {"enum": [str(c) for c in Cause]}, "duration_seconds": _null(_NUM), "exit_code": _null(_INT),
         "http_status": _null(_INT)}
_RATE = _obj(succeeded=_INT, ended=_INT, rate=_null(_NUM),
             counts={"type": "object", "propertyNames": {"enum": [str(s) for s in RUN_STATES]},
                     "additionalProperties": _INT})

SCHEMAS: dict[str, Any] = {
    "StripCell": _obj(**_CELL),
    "Strips": _obj(runs=_INT, strips={"type": "object",
                                      "additionalProperties": {"type": "array", "items": _ref("StripCell")}}),
    "Trends": _obj(
        name=_STR, timezone=_STR, now=_TIME,
        points={"type": "array", "items": _obj(**_CELL, failed=_BOOL, peak_memory_bytes=_null(_INT),
                                                cpu_seconds=_null(_NUM))},
        success=_obj(**{"24h": _RATE, "7d": _RATE}),
        upcoming={"type": "array", "items": _obj(slot=_TIME, fires=_TIME, skipped=_null(_STR), note=_null(_STR))},
        graph={"type": "null"}),
    "Timeline": _obj(
        **{"from": _TIME, "to": _TIME}, zone=_null(_STR), limit=_INT, heavy_seconds=_INT, truncated=_null(_STR),
        lanes={"type": "array", "items": _obj(schedule=_STR, timezone=_STR, slots=_INT, heavy=_BOOL,
                                               typical_seconds=_null(_NUM))},
        slots={"type": "array", "items": _obj(lane=_INT, schedule=_STR, slot=_TIME, fires=_TIME, local=_STR,
                                               skipped=_null(_STR), note=_null(_STR), heavy=_BOOL, overlap=_INT)},
        counts=_obj(slots=_INT, skipped=_INT, heavy=_INT),
        overlaps=_obj(peak=_INT, peak_at=_null(_TIME),
                      series={"type": "array", "items": {"type": "array", "items": _NUM, "minItems": 2,
                                                         "maxItems": 2, "description": "[unix time, runs]"}})),
}

_ASSETS = {"text/javascript": "Script.", "text/css": "Style sheet."}

PATHS: dict[str, Any] = {
    **{path: _get(f"The dashboard's {'charting library' if 'vendor' in path else 'pictures'} ({name}).",
                  _text(media, _ASSETS[media]), tag="dashboard", gated=False)
       for path, (name, media) in pictures.VENDOR.items()},
    "/api/v1/strips": _get(
        "The run strips of the named schedules: each one's last runs, oldest first, in one query.",
        _json("Strips", "Strips by schedule (schedules the applied revision lacks are left out)."), params=(
            _query("name", {"type": "array", "items": _STR, "maxItems": pictures.STRIP_NAMES},
                   "A schedule's name; repeat it for each."),
            _query("runs", {"type": "integer", "minimum": 1, "maximum": pictures.STRIP_MAX,
                            "default": pictures.STRIP_RUNS}, "Runs per strip."))),
    "/api/v1/schedules/{name}/trends": _get(
        "A schedule's recent runs as chart points (duration, peak memory, CPU, failures marked), its success "
        "rates over 24 h and 7 d and its next fire times.", _json("Trends", "Trends."), params=(
            _NAME, _query("runs", {"type": "integer", "minimum": 1, "maximum": pictures.TREND_MAX,
                                   "default": pictures.TREND_RUNS}, "How many recent runs.")),
        more={"404": _json("Error", "No such schedule.")}),
    "/api/v1/timeline": _get(
        "What fires in a range: every slot of the active schedules, skipped ones with why, heavy runs and "
        "their overlaps; at most `limit` slots.", _json("Timeline", "The timeline."), params=(
            _query("from", _TIME, "Start of the range (default: now)."),
            _query("hours", {"type": "integer", "minimum": 1, "maximum": pictures.TIMELINE_MAX_HOURS,
                             "default": pictures.TIMELINE_HOURS}, "Length of the range."),
            _query("zone", _STR, "An IANA zone to show times in; empty: each schedule's own."),
            _query("q", _STR, "Part of the name or the description (case-insensitive)."),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": pictures.TIMELINE_MAX,
                             "default": pictures.TIMELINE_SLOTS}, "The most slots computed."),
            _query("heavy_seconds", {"type": "integer", "minimum": 0, "maximum": 366 * 86400,
                                     "default": pictures.HEAVY_SECONDS},
                   "A schedule whose median run takes at least this long is heavy."))),
}
