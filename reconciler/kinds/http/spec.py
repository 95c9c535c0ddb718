"""The spec face of the http kind: `run: {http: {url, method, headers, json | body, timeout,
expect_status}}`.

Pure: the core's loader imports it to check and build schedules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from reconciler.core.durations import parse_duration
from reconciler.core.model import EnvValue, env_values
from reconciler.core.problems import JsonPath
from reconciler.kinds.base import Checks

NAME = "http"
# Its fragment of the schema's `run` object: this property.
KEYS = frozenset((NAME,))
_COMMAND_ONLY = ("workdir", "env", "timeout", "limits")  # run-level keys a request has in `http` or not at all


@dataclass(frozen=True, slots=True)
class HttpRun:
    url: str
    method: str
    headers: tuple[tuple[str, EnvValue], ...]
    json_body: Any  # the JSON value to send; `has_json` tells null apart from absent
    has_json: bool
    body: str | None
    timeout: timedelta
    expect_status: tuple[int, ...]  # empty: any 2xx

    @property
    def kind(self) -> str:
        return NAME


def build(run: Mapping[str, Any]) -> HttpRun:
    h = run[NAME]
    return HttpRun(h["url"], h.get("method", "GET"), env_values(h.get("headers")), h.get("json"), "json" in h,
                   h.get("body"), parse_duration(h.get("timeout", "10s")), tuple(h.get("expect_status", ())))


def validate(run: Mapping[str, Any], check: Checks) -> None:
    ptr = ("run",)
    http = run.get(NAME)
    if not isinstance(http, dict):
        return
    for key in _COMMAND_ONLY:
        if key in run:
            where = "run.http.timeout" if key == "timeout" else "run.command"
            check.add((*ptr, key), f"{key} applies to commands only (see {where})", key=True)
    if "json" in http and "body" in http:
        check.add((*ptr, "http", "body"), "json and body cannot be used together: choose one", key=True)
    if http.get("method", "GET") in ("GET", "HEAD") and ("json" in http or "body" in http):
        check.add((*ptr, "http", "method"), "a request body needs a method such as POST or PUT")
    t = check.duration(http, (*ptr, "http"), "timeout")
    if t is not None and t <= timedelta(0):
        check.add((*ptr, "http", "timeout"), "timeout must be longer than 0")
    check.url(http, (*ptr, "http"), "url")
    if "json" in http and (spot := _non_finite(http["json"], (*ptr, "http", "json"))) is not None:
        check.add(spot, "a number too large for JSON (it reads as infinity): write it as a string")


def _non_finite(value: Any, ptr: JsonPath) -> JsonPath | None:
    """Where a JSON body holds inf (`1e999`): no JSON encoder sends it."""
    if isinstance(value, float) and not math.isfinite(value):
        return ptr
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, (*ptr, k))
        if found is not None:
            return found
    return None


def describe(spec: HttpRun) -> str:
    """The method and URL, without any user and password the URL holds."""
    parts = urlsplit(spec.url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return f"{spec.method} {parts.geturl()}"
