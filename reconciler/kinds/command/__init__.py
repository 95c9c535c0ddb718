"""The command kind: a program run without a shell, and everything it starts stopped with it.

Importing this package imports the spec face only; the run face (subprocess, the process tree)
is imported by the first start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.kinds.base import Checks, Context, Handle, Kind
from reconciler.kinds.command import spec
from reconciler.kinds.command.spec import CommandRun


class Command:
    name = spec.NAME
    keys = spec.KEYS

    def build(self, run: Mapping[str, Any]) -> CommandRun:
        return spec.build(run)

    def validate(self, run: Mapping[str, Any], check: Checks) -> None:
        spec.validate(run, check)

    def describe(self, run: CommandRun) -> str:
        return spec.describe(run)

    def start(self, run: CommandRun, context: Context) -> Handle:
        from reconciler.kinds.command import run as run_face

        return run_face.start(run, context)


KIND: Kind[CommandRun] = Command()
