"""What a run kind is: the protocol the loader and the runner speak, and the values they exchange.

A kind has two faces. Its spec face (`keys`, `build`, `validate`, `describe`) is pure: the core's
loader uses it to check and build a schedule, so it imports nothing that does I/O. Its run face
(`start`) does the I/O, and is imported on the first start only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from reconciler.core.limits import Usage
from reconciler.core.model import RunSpec
from reconciler.core.policy import RunStatus
from reconciler.core.problems import JsonPath

S = TypeVar("S", bound=RunSpec)
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out or stopped job


@dataclass
class Attempt:
    """The outcome of one execution, before it is written to the ledger."""

    status: RunStatus  # succeeded | failed | timed_out | cancelled | interrupted
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    output: str = ""
    dropped: int = 0
    usage: Usage | None = None  # what the run used, where the kind can tell


@dataclass(frozen=True, slots=True)
class Context:
    """What a start needs besides the spec: which run this is, and where it may read secrets."""

    schedule: str
    slot: datetime
    run_id: int
    attempt: int
    revision: str
    environ: Mapping[str, str]
    # Told where the run's processes live (opaque text) once they started: the ledger keeps it, so
    # that the next start can stop what a killed reconciler left behind.
    on_started: Callable[[str], None] | None = None


class Handle(Protocol):
    """A started run. `wait` is called once, by the thread that started it; `stop` from any thread."""

    def wait(self) -> Attempt: ...

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None: ...


class Checks(Protocol):
    """What the loader offers a kind's `validate`: problems are added at a JSON path of the document."""

    def add(self, ptr: JsonPath, message: str, severity: str = "error", key: bool = False) -> None: ...

    def duration(self, mapping: Any, ptr: JsonPath, key: str) -> timedelta | None: ...

    def url(self, mapping: Any, ptr: JsonPath, key: str) -> None:
        """Says so when an http(s) URL can never be requested."""
        ...


class Kind(Protocol[S]):
    """A run kind, as the registry (reconciler.kinds) hands it out; S is the record it builds."""

    name: str
    keys: frozenset[str]  # the keys of `run` whose schema fragment this kind owns; `name` among them

    def build(self, run: Mapping[str, Any]) -> S:
        """The record of a `run` block that passed the schema and every `validate`."""
        ...

    def validate(self, run: Mapping[str, Any], check: Checks) -> None:
        """What the schema cannot say about this kind's keys; called whenever one of them is present."""
        ...

    def describe(self, run: S) -> str:
        """One line for people: what runs (never a secret value)."""
        ...

    def start(self, run: S, context: Context) -> Handle:
        """Begin the run in the calling thread (the one that will `wait`). A run that cannot start
        (a secret that cannot be read, a missing program) is a handle whose `wait` says so."""
        ...


class Finished:
    """A run that ended before it started (a secret could not be read): `wait` says how."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt

    def wait(self) -> Attempt:
        return self._attempt

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
        pass
