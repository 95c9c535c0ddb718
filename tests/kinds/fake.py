"""A run kind that lives only in the tests: what adding a kind takes, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.policy import RunStatus
from reconciler.kinds.base import KILL_GRACE, Attempt, Checks, Context, Kind


@dataclass(frozen=True, slots=True)
class EchoRun:
    text: str

    @property
    def kind(self) -> str:
        return "echo"


class Said:
    def __init__(self, text: str) -> None:
        self.text = text
        self.stopped: RunStatus | None = None

    def wait(self) -> Attempt:
        return Attempt(RunStatus.SUCCEEDED, output=self.text)

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
        self.stopped = reason


class Echo:
    name = "echo"
    keys = frozenset(("echo",))

    def build(self, run: Mapping[str, Any]) -> EchoRun:
        return EchoRun(run["echo"])

    def validate(self, run: Mapping[str, Any], check: Checks) -> None:
        if not run.get("echo"):
            check.add(("run", "echo"), "say something")

    def describe(self, run: EchoRun) -> str:
        return f"echo {run.text}"

    def start(self, run: EchoRun, context: Context) -> Said:
        return Said(f"{run.text} from {context.schedule} run {context.run_id}")


KIND: Kind[EchoRun] = Echo()
