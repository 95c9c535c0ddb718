"""The spec face of the command kind: `run: {command: [argv...], workdir, env, timeout, limits}`.

Pure: the core's loader imports it to check and build schedules.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from reconciler.core.durations import parse_duration
from reconciler.core.limits import Limits, build_limits, limit_problems
from reconciler.core.model import EnvValue, env_values
from reconciler.kinds.base import Checks

NAME = "command"
# Its fragment of the schema's `run` object: these properties.
KEYS = frozenset(("command", "workdir", "env", "timeout", "limits"))


@dataclass(frozen=True, slots=True)
class CommandRun:
    argv: tuple[str, ...]
    workdir: str | None
    env: tuple[tuple[str, EnvValue], ...]
    timeout: timedelta
    limits: Limits | None = None
    # Equal records behave the same (strings, durations, limits: no bool beside an int), so
    # schedules may share one (core/interning.py).
    shareable: ClassVar[bool] = True

    @property
    def kind(self) -> str:
        return NAME


def build(run: Mapping[str, Any]) -> CommandRun:
    return CommandRun(tuple(run["command"]), run.get("workdir"), env_values(run.get("env")),
                      parse_duration(run.get("timeout", "30m")), build_limits(run.get("limits")))


def validate(run: Mapping[str, Any], check: Checks) -> None:
    timeout = check.duration(run, ("run",), "timeout")
    if timeout is not None and timeout <= timedelta(0):
        check.add(("run", "timeout"), "timeout must be longer than 0")
    for key, message in limit_problems(run.get("limits")):
        check.add(("run", "limits", key), message)


def describe(spec: CommandRun) -> str:
    return shlex.join(spec.argv)
