"""The OpenAPI 3.1 document of the HTTP API, served at /api/v1/openapi.json.

Every route that service/http.py serves is described here, with its parameters and every status it
answers with (tests/service/test_openapi.py compares this document's paths and methods with the
app's routes, and runs schemathesis against a real daemon, so the two cannot drift apart). The
response schemas are exact: `additionalProperties: false` wherever the answer is built by
service/views.py, so a field added there without being described here fails the test.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from reconciler.core.policy import RUN_STATES, Cause, RunStatus, ScheduleState

MAX_ID = 2**63 - 1  # as http.MAX_ID: SQLite's INTEGER

_TIME = {"type": "string", "format": "date-time"}
_STR, _INT, _BOOL, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}


def _null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "required": sorted(props), "additionalProperties": False, "properties": props}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _run(output: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": _INT, "schedule": _STR, "slot": _TIME, "attempt": _INT,
        "trigger": {"enum": [str(c) for c in Cause]}, "status": {"enum": [str(s) for s in RUN_STATES]},
        "revision": _STR, "started_at": _null(_TIME), "finished_at": _null(_TIME), "exit_code": _null(_INT),
        "http_status": _null(_INT), "error": _null(_STR), "duration_seconds": _null(_NUM),
        "replica": _null(_STR)}
    if output:
        props.update(output=_STR, output_dropped_bytes=_INT, peak_memory_bytes=_null(_INT),
                     cpu_user_seconds=_null(_NUM), cpu_system_seconds=_null(_NUM))
    return _obj(**props)


_SUMMARY = {
    "name": _STR, "description": _STR, "labels": {"type": "object", "additionalProperties": _STR},
    "enabled": _BOOL, "state": {"enum": [str(s) for s in ScheduleState]}, "schedule": _STR, "kind": _STR,
    "expression": _null(_STR), "timezone": _STR, "next": _null(_TIME), "next_local": _null(_STR),
    "next_note": _null(_STR),
    "last_run": _null(_ref("Run")), "source": _STR,
    "paused": _null(_obj(by=_STR, at=_TIME, reason=_STR, until=_null(_TIME)))}

SCHEMAS: dict[str, Any] = {
    "Error": _obj(error=_STR),
    "Run": _run(output=False),
    "RunWithOutput": _run(output=True),
    "Status": _obj(
        ready=_BOOL, applied=_obj(revision=_null(_STR), at=_null(_TIME)),
        attempted=_obj(revision=_null(_STR), at=_null(_TIME), rejected=_BOOL, error=_null(_STR),
                       problems={"type": "array", "items": _obj(path=_STR, line=_INT, column=_INT, pointer=_STR,
                                                                 message=_STR)}),
        ledger_error=_null(_STR), ledger_unreachable=_null(_STR), superseded_by=_null(_STR), directory=_STR,
        read_only=_BOOL, now=_TIME),
    "Overview": _obj(status=_ref("Status"), counts=_obj(**{str(s): _INT for s in ScheduleState}), total=_INT,
                     running=_INT, waiting=_INT, recent_failures={"type": "array", "items": _ref("Run")}),
    "ScheduleSummary": _obj(**_SUMMARY),
    "Schedule": _obj(**_SUMMARY, spec_yaml=_STR, runs={"type": "array", "items": _ref("Run")},
                     upstreams={"type": "array", "items": _STR}, downstreams={"type": "array", "items": _STR},
                     upcoming={"type": "array", "items": _obj(slot=_TIME, fires=_TIME, local=_STR,
                                                              skipped=_null(_STR), note=_null(_STR))}),
    "SchedulePage": _obj(total=_INT, offset=_INT, limit=_INT,
                         items={"type": "array", "items": _ref("ScheduleSummary")}),
    "RunPage": _obj(items={"type": "array", "items": _ref("Run")}, next_before=_null(_INT)),
    "Replica": _obj(
        id=_STR, host=_STR, pid=_INT, version=_STR, revision=_null(_STR),
        state={"enum": ["alive", "expired", "stopped"]}, started=_TIME, last_heartbeat=_TIME,
        heartbeat_age_seconds=_null(_NUM), lease_until=_TIME, stopped=_null(_TIME), runs_owned=_INT),
    "Replicas": _obj(replicas={"type": "array", "items": _ref("Replica")}),
    "Pools": _obj(pools={"type": "array", "items": _obj(name=_STR, size=_INT, running=_null(_INT), queued=_INT)}),
    "Summary": _obj(
        source={"enum": ["daemon", "ledger"]}, applied=_obj(revision=_null(_STR), at=_null(_TIME)),
        rejected=_null(_obj(revision=_null(_STR), since=_null(_TIME), error=_null(_STR), problems=_INT)),
        superseded_by=_null(_STR), ledger_unreachable=_null(_STR), ready=_null(_BOOL),
        runs=_obj(**{str(s): _INT for s in RunStatus}),
        failing={"type": "array", "items": _obj(schedule=_STR, status={"enum": [str(s) for s in RUN_STATES]},
                                                 slot=_TIME, run_id=_INT, error=_null(_STR),
                                                 replica=_null(_STR))},
        replicas={"type": "array", "items": _ref("Replica")},
        next={"type": "array", "items": _obj(schedule=_STR, at=_TIME)}),
    "Triggered": _obj(triggered=_STR),
    "Pause": _obj(schedule=_STR, by=_STR, at=_TIME, reason=_STR, until=_null(_TIME), active=_BOOL),
    "Pauses": _obj(items={"type": "array", "items": _ref("Pause")}),
    "Resumed": _obj(schedule=_STR, was_paused=_BOOL),
    "Backfill": _obj(dry_run=_BOOL, slots={"type": "array", "items": _obj(
        slot=_TIME, plan=_STR, detail=_STR, run_id=_null(_INT), status=_null(_STR))}),
    "Commit": _obj(sha=_STR, author=_STR, email=_STR, authored_at=_TIME, subject=_STR),
    "Change": _obj(seq=_INT, revision=_STR, applied_at=_TIME, commit=_null(_ref("Commit")),
                   action={"enum": ["add", "change", "remove"]},
                   fields={"type": "array", "items": _obj(path=_STR, old={}, new={})}),
    "ScheduleHistory": _obj(schedule=_STR, changes={"type": "array", "items": _ref("Change")}),
    # The dependency graph (service/graph.py).
    "Graph": _obj(
        revision=_null(_STR), total_nodes=_INT, total_edges=_INT, truncated=_BOOL,
        nodes={"type": "array", "items": _obj(
            name=_STR, description=_STR, state={"enum": [str(s) for s in ScheduleState]}, kind=_STR,
            last_status=_null({"enum": [str(s) for s in RUN_STATES]}), last_run_id=_null(_INT),
            last_slot=_null(_TIME), paused=_BOOL)},
        edges={"type": "array", "items": _obj(
            **{"from": _STR, "to": _STR, "kind": {"enum": ["after", "requires"]}, "all": _BOOL},
            on=_null({"enum": ["success", "failure", "finished"]}), status=_null(_STR),
            within_seconds=_null(_NUM))}),
    "TokenInfo": _obj(name=_STR, role={"enum": ["read", "operate"]}),
    "Activity": _obj(id=_INT, at=_TIME, who=_STR,
                     action={"enum": ["trigger", "pause", "resume", "backfill", "bulk_pause", "bulk_resume"]},
                     targets={"type": "array", "items": _STR}, reason=_STR, details={"type": "object"}),
    "ActivityPage": _obj(items={"type": "array", "items": _ref("Activity")}, next_before=_null(_INT)),
    "Bulk": _obj(dry_run=_BOOL, selector=_STR, schedules={"type": "array", "items": _STR}, confirm=_STR),
    "BulkChanged": _obj(error=_STR, dry_run=_BOOL, selector=_STR, schedules={"type": "array", "items": _STR},
                        confirm=_STR),
}


def _json(schema: str, why: str) -> dict[str, Any]:
    return {"description": why, "content": {"application/json": {"schema": _ref(schema)}}}


def _text(media: str, why: str) -> dict[str, Any]:
    return {"description": why, "content": {media: {"schema": _STR}}}


_MISDIRECTED = _json("Error", "The Host header names no host this server answers to (a guard against DNS "
                              "rebinding): see --allowed-host.")
_BAD = _json("Error", "A parameter is out of range or not one of its values.")


def _query(name: str, schema: dict[str, Any], why: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": why}


def _path(name: str, schema: dict[str, Any], why: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": why}


def _limit(default: int, high: int) -> dict[str, Any]:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": high, "default": default}, "Page size.")


_NAME = _path("name", {"type": "string"}, "The schedule's name.")


_UNREAD = {"401": {**_json("Error", "The server was started with --read-token-required and the request "
                                    "carries no valid bearer token."),
                    "headers": {"WWW-Authenticate": {"schema": _STR}}}}


def _get(summary: str, ok: dict[str, Any], *, params: tuple[dict[str, Any], ...] = (),
         more: dict[str, Any] | None = None, tag: str = "api", gated: bool = True) -> dict[str, Any]:
    responses = {"200": ok, **(more or {}), **(_UNREAD if gated else {}), "421": _MISDIRECTED}
    if params and any(p["in"] == "query" or p["schema"].get("type") == "integer" for p in params):
        responses.setdefault("400", _BAD)
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(sorted(responses.items()))}
    if params:
        op["parameters"] = list(params)
    return {"get": op}


_NOT_FOUND = {"404": _json("Error", "No such schedule.")}


def _action(summary: str, ok: dict[str, Any], body: dict[str, Any] | None = None, *,
            named: bool = True) -> dict[str, Any]:
    """An operator's action: POST with an operate token, an optional JSON body."""
    op: dict[str, Any] = {
        "summary": summary, "tags": ["actions"], "security": [{"bearer": []}],
        "parameters": [_NAME] if named else [],
        "responses": {**ok,
                      # JSON from the app; plain text when the HTTP server itself refuses the request
                      # (an Authorization header HTTP does not allow), as for the trigger.
                      "400": {"description": "A malformed body or value, or a refused request (e.g. a backfill "
                                             "into the future or of more than `max` slots).",
                              "content": {"application/json": {"schema": _ref("Error")},
                                          "text/plain": {"schema": _STR}}},
                      "401": {**_json("Error", "No valid bearer token."),
                              "headers": {"WWW-Authenticate": {"schema": _STR}}},
                      "403": _json("Error", "Read-only (the server has no operate token), or the token's role "
                                            "is read."),
                      "404": _json("Error", "No such schedule."), "421": _MISDIRECTED}}
    if not named:
        del op["responses"]["404"]
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return {"post": op}

PATHS: dict[str, Any] = {
    "/": _get("The dashboard (HTML).", _text("text/html", "The dashboard page."), tag="dashboard", gated=False),
    "/dashboard.js": _get("The dashboard's script.", _text("text/javascript", "Script."), tag="dashboard", gated=False),
    "/dashboard.css": _get("The dashboard's style sheet.", _text("text/css", "Style sheet."), tag="dashboard",
                           gated=False),
    "/api/v1/token": _get("The name and role of the bearer token the request carries (401 without a valid one).",
                          _json("TokenInfo", "The token's name and role.")),
    "/healthz": _get("Liveness: the timer runs.", _text("text/plain", "ok"),
                     more={"503": _text("text/plain", "The timer is not running.")}, tag="probes", gated=False),
    "/readyz": _get("Readiness: a revision is applied and the ledger answers.", _text("text/plain", "ready"),
                    more={"503": _text("text/plain", "Not ready, and why (no revision yet, the ledger "
                                                     "unreachable).")}, tag="probes", gated=False),
    "/metrics": _get("Prometheus metrics (docs/monitoring.md lists them).",
                     _text("text/plain", "The Prometheus text exposition format."), tag="probes"),
    "/api/v1/openapi.json": _get("This document.", {"description": "The OpenAPI 3.1 document.",
                                                    "content": {"application/json": {"schema": {"type": "object"}}}}),
    "/api/v1/status": _get("The applied revision, and why a newer one was rejected.", _json("Status", "Status.")),
    "/api/v1/overview": _get("Status, counts by state and recent failures.", _json("Overview", "Overview.")),
    "/api/v1/schedules": _get("Schedules of the applied revision, filtered, sorted and paged.",
                              _json("SchedulePage", "One page of schedules."), params=(
        _query("q", _STR, "Part of the name or the description (case-insensitive)."),
        _query("label", _STR, "key=value: only schedules with this label."),
        _query("state", _STR, "active, suspended or completed."),
        _query("last_status", _STR, "The newest run's status, or `never`."),
        _query("sort", {"enum": ["name", "next", "last"], "default": "name"}, "The order."),
        _query("desc", _STR, "`1` or `true` for descending."),
        _limit(50, 1000),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}, "Rows to skip."))),
    "/api/v1/schedules/{name}": _get("One schedule: its spec, next fire times and recent runs.",
                                     _json("Schedule", "The schedule."), params=(_NAME,), more=_NOT_FOUND),
    "/api/v1/schedules/{name}/history": _get(
        "The schedule's change history from git: each applied revision that changed it, newest first, with the "
        "commit's author, time and subject and the field diff.", _json("ScheduleHistory", "The changes."),
        params=(_NAME, _limit(100, 1000)), more=_NOT_FOUND),
    "/api/v1/schedules/{name}/trigger": _action(
        "Run the schedule now, as a manual run (recorded in the activity, with the reason).",
        {"202": _json("Triggered", "The run was started.")}, _obj(reason=_STR) | {"required": []}),
    "/api/v1/schedules/{name}/pause": _action(
        "Pause the schedule (its slots are recorded skipped) with a reason, until an instant or for a duration.",
        {"200": _json("Pause", "The pause now in force.")},
        _obj(reason=_STR, until=_TIME, **{"for": _STR}) | {"required": []}),
    "/api/v1/schedules/{name}/resume": _action("Lift the schedule's pause.",
                                               {"200": _json("Resumed", "Whether it was paused.")},
                                               _obj(reason=_STR) | {"required": []}),
    "/api/v1/schedules/{name}/backfill": _action(
        "Run the past slots of [from, to) that have no run yet (or list them, with dry_run).",
        {"200": _json("Backfill", "The plan (a dry run, or nothing to run)."),
         "202": _json("Backfill", "The plan; its runs were started.")},
        _obj(**{"from": _TIME, "to": _TIME}, dry_run=_BOOL, parallel={"type": "integer", "minimum": 1},
             max={"type": "integer", "minimum": 1}, reason=_STR) | {"required": ["from", "to"]}),
    "/api/v1/bulk/pause": _action(
        "Pause every schedule whose labels match `selector` (key=value, comma-separated). Without `confirm`, a "
        "dry run: the schedules chosen and the confirm code; with that code, the pauses.",
        {"200": _json("Bulk", "The schedules chosen (a dry run), or paused."),
         "409": _json("BulkChanged", "The schedules chosen changed since the dry run: the new list and code.")},
        _obj(selector=_STR, confirm=_STR, reason=_STR, until=_TIME, **{"for": _STR}) | {"required": ["selector"]},
        named=False),
    "/api/v1/bulk/resume": _action(
        "Resume every schedule whose labels match `selector`, in two steps as the bulk pause.",
        {"200": _json("Bulk", "The schedules chosen (a dry run), or resumed."),
         "409": _json("BulkChanged", "The schedules chosen changed since the dry run: the new list and code.")},
        _obj(selector=_STR, confirm=_STR, reason=_STR) | {"required": ["selector"]}, named=False),
    "/api/v1/activity": _get("Operators' actions (trigger, pause, resume, backfill, bulk), newest first, with "
                             "who (the token's name or the OS user), when, what and why.",
                             _json("ActivityPage", "One page of actions."), params=(
        _query("schedule", _STR, "Only actions on this schedule."),
        _limit(50, 1000),
        _query("before", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "Only actions with a smaller id."))),
    "/api/v1/pauses": _get("The pauses in force.", _json("Pauses", "Pauses.")),
    "/api/v1/runs": _get("Runs, newest first, paged by `before`.", _json("RunPage", "One page of runs."), params=(
        _query("schedule", _STR, "Only this schedule's runs."),
        _query("status", {"enum": [str(s) for s in RUN_STATES]}, "Only runs with this status."),
        _limit(50, 1000),
        _query("before", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "Only runs with a smaller id."))),
    "/api/v1/runs/{run_id}": _get("One run with its output.", _json("RunWithOutput", "The run."), params=(
        _path("run_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "The run's id."),),
        more={"404": _json("Error", "No such run.")}),
    "/api/v1/replicas": _get("The reconcilers sharing the ledger.", _json("Replicas", "Replicas.")),
    "/api/v1/graph": _get("The whole dependency graph: every schedule that follows or requires another, or is "
                          "followed or required, with its state and last status, and the edges upstream -> "
                          "downstream (`after` or `requires`); cut at 2,000 nodes (`truncated`).",
                          _json("Graph", "The graph.")),
    "/graph.js": _get("The dashboard's graph script.", _text("text/javascript", "Script."), tag="dashboard"),
    "/graph.css": _get("The dashboard's graph style sheet.", _text("text/css", "Style sheet."), tag="dashboard"),
    "/vendor/dagre.min.js": _get("The graph layout library (@dagrejs/dagre, MIT).",
                                 _text("text/javascript", "Script."), tag="dashboard"),
    "/api/v1/pools": _get("The named pools (pools.yaml): each one's size, its runs running across every replica "
                          "(null while the ledger cannot be read), and the slots this replica has queued for room.",
                          _json("Pools", "Pools.")),
    "/api/v1/summary": _get("What `reconciler status` shows: the applied and a rejected revision, runs by state, "
                            "failing schedules, the replicas and the next fire times.", _json("Summary", "Summary.")),
}


@cache
def document(version: str) -> dict[str, Any]:
    from reconciler.service import pictures_openapi  # it builds on the helpers above

    paths, schemas = {**PATHS, **pictures_openapi.PATHS}, {**SCHEMAS, **pictures_openapi.SCHEMAS}
    return {
        "openapi": "3.1.0",
        "info": {"title": "schedule-reconciler", "version": version,
                 "description": "The reconciler's HTTP API: probes, metrics, schedules, runs and actions."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "A token from --token-file."}}},
    }
