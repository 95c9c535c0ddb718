"""The http kind: one HTTP request with an idempotency key, redirects followed on its host only.

Importing this package imports the spec face only; the run face (httpx) is imported by the first
start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.kinds.base import Checks, Context, Handle, Kind
from reconciler.kinds.http import spec
from reconciler.kinds.http.spec import HttpRun


class Http:
    name = spec.NAME
    keys = spec.KEYS

    def build(self, run: Mapping[str, Any]) -> HttpRun:
        return spec.build(run)

    def validate(self, run: Mapping[str, Any], check: Checks) -> None:
        spec.validate(run, check)

    def describe(self, run: HttpRun) -> str:
        return spec.describe(run)

    def start(self, run: HttpRun, context: Context) -> Handle:
        from reconciler.kinds.http import run as run_face

        return run_face.start(run, context)


KIND: Kind[HttpRun] = Http()
