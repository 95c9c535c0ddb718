"""Immutable records for a validated schedule. Built only by `loader.build()`, after validation."""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from reconciler.core.interning import interned, interned_pairs
from reconciler.core.timerules import NO_RULES, TimeRules
from reconciler.core.timing import Timing

Concurrency = Literal["forbid", "allow", "replace"]
Catchup = Literal["none", "latest"]


@dataclass(frozen=True, slots=True)
class EnvValue:
    """A literal, or a reference resolved only at run time (never logged or stored)."""

    literal: str | None = None
    from_env: str | None = None
    from_file: str | None = None


class RunSpec(Protocol):
    """What a run kind (reconciler.kinds) builds from its part of `run`: a frozen record."""

    @property
    def kind(self) -> str: ...


def env_values(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, EnvValue], ...]:
    """Environment variables or headers as written: a literal, or {from_env: ...} / {from_file: ...}."""
    out = []
    for k, v in (mapping or {}).items():
        if isinstance(v, str):
            out.append((k, EnvValue(literal=v)))
        else:
            out.append((k, EnvValue(from_env=v.get("from_env"), from_file=v.get("from_file"))))
    return interned_pairs(tuple(out))


@dataclass(frozen=True, slots=True)
class Retries:
    limit: int = 0
    backoff: timedelta = timedelta(seconds=10)
    max_backoff: timedelta = timedelta(minutes=10)

    def delay_before(self, attempt: int) -> timedelta:
        """Exponential backoff before `attempt` (2, 3, ...), capped at max_backoff."""
        factor = 2 ** max(0, attempt - 2)
        if self.backoff > self.max_backoff / factor:  # compared first: backoff * 2**98 overflows
            return self.max_backoff
        delay: timedelta = min(self.backoff * factor, self.max_backoff)
        return delay


@dataclass(frozen=True, slots=True)
class Policy:
    concurrency: Concurrency = "forbid"
    starting_deadline: timedelta = timedelta(minutes=1)
    catchup: Catchup = "none"
    retries: Retries = Retries()
    max_runs: int | None = None
    pool: str | None = None  # a named pool of pools.yaml: bounds its running runs across replicas
    priority: int = 0  # queued slots of a pool start highest first


@dataclass(frozen=True, slots=True)
class Notify:
    url: EnvValue
    events: frozenset[str]
    every_failure: bool
    headers: tuple[tuple[str, EnvValue], ...]
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    line: int
    document: int


# ---- dependencies (issue 18) ----------------------------------------------------------------------

On = Literal["success", "failure", "finished"]
SELF = "self"  # in `requires`: the schedule's own history


@dataclass(frozen=True, slots=True)
class Requirement:
    """`requires: [{schedule, status, within}]`: a slot runs only if this holds."""

    schedule: str  # a name, or SELF
    status: str  # succeeded | failed | finished
    within: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Deps:
    after: tuple[str, ...] = ()  # trigger mode: no clock; runs after these schedules' runs
    on: On = "success"
    all: bool = False
    requires: tuple[Requirement, ...] = ()

    @property
    def upstreams(self) -> tuple[str, ...]:
        """Every other schedule this one waits for or follows, in the order written."""
        names = [*self.after, *(r.schedule for r in self.requires if r.schedule != SELF)]
        return tuple(dict.fromkeys(names))


NO_DEPS = Deps()


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    description: str
    enabled: bool
    labels: tuple[tuple[str, str], ...]
    timing: Timing
    run: RunSpec
    policy: Policy
    history_keep: int
    notify: tuple[Notify, ...]
    # The document as written (for snapshots, plans and the API), kept packed: see `pack_spec`.
    packed_spec: bytes = field(repr=False, compare=False)
    source: Source
    spec_hash: str  # see spec_hash(); computed once, at build
    deps: Deps = NO_DEPS
    # Windows and calendars, resolved against the shared files (core/timerules.py) once the whole
    # directory is read; a schedule that names none keeps NO_RULES.
    rules: TimeRules = NO_RULES
    # Whether the spec names shared windows or a calendar: asked for every schedule at each load,
    # so it is answered without unpacking the spec.
    shared: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # Equal labels, notifications and (where the kind allows it) run records are kept once
        # across the fleet: see core/interning.py.
        object.__setattr__(self, "labels", interned_pairs(self.labels))
        if self.notify:
            object.__setattr__(self, "notify", interned(self.notify))
        if getattr(self.run, "shareable", False):
            object.__setattr__(self, "run", interned(self.run))

    @property
    def spec(self) -> dict[str, Any]:
        """The document as written: a new dict at each call (unpacked), so a caller may change it."""
        spec: dict[str, Any] = marshal.loads(self.packed_spec)
        return spec

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.spec)

    @property
    def labels_dict(self) -> dict[str, str]:
        return dict(self.labels)


METADATA_FIELDS = frozenset(("description", "labels"))


def pack_spec(spec: dict[str, Any]) -> bytes:
    """A spec as the record keeps it: marshalled bytes are a fifth of the parsed dicts' memory
    and unpack in microseconds, and only a plan, the API or the ledger asks for them (marshal's
    format is this interpreter's own, and the bytes never leave the process)."""
    return marshal.dumps(spec)


def names_shared(spec: dict[str, Any]) -> bool:
    return "windows" in spec or "calendar" in spec


def fingerprint(spec: dict[str, Any]) -> str:
    """Hash of what drives behaviour; description and labels do not move it."""
    essence = {k: v for k, v in spec.items() if k not in METADATA_FIELDS}
    essence.setdefault("enabled", True)
    return _digest(essence)


def spec_hash(spec: dict[str, Any]) -> str:
    """Hash of the whole spec: any edit, metadata included, changes it."""
    return _digest(spec)


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
