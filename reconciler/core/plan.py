"""The plan: desired state against applied state, compared by fingerprints of canonical specs.

Pure: both sides are mappings of name -> spec (the document as written), whether they came from
files, from git objects or from a ledger snapshot. No scheduler objects are ever compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reconciler.core.model import METADATA_FIELDS, fingerprint, spec_hash

_MISSING: Any = object()


class Action(Enum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # dotted, e.g. "schedule.cron"; list items as "run.command[1]"
    old: Any  # _MISSING-free: None is shown as "(absent)" when the field did not exist
    new: Any
    old_present: bool = True
    new_present: bool = True


@dataclass(frozen=True, slots=True)
class Change:
    """One schedule's change. `old` and `new` are the specs of a CHANGE; an addition or a removal
    carries its name alone (a first load adds every schedule, and reading each stored spec back
    would cost as much as the rest of the plan), so read those from the maps that were planned."""

    action: Action
    name: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    fields: tuple[FieldChange, ...] = ()

    @property
    def metadata_only(self) -> bool:
        """A change to description/labels only: nothing about when or what it runs moves."""
        return self.action is Action.CHANGE and all(f.path.split(".")[0].split("[")[0] in METADATA_FIELDS
                                                     for f in self.fields)


@dataclass(frozen=True, slots=True)
class Plan:
    added: tuple[Change, ...]
    changed: tuple[Change, ...]
    removed: tuple[Change, ...]
    # A set: sorting 10,000 names on every reload is wasted work; the daemon passes a view.
    unchanged: AbstractSet[str]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def changes(self) -> Iterator[Change]:
        yield from self.removed
        yield from self.changed
        yield from self.added

    def summary(self) -> str:
        return (f"{len(self.added)} to add, {len(self.changed)} to change, {len(self.removed)} to remove, "
                f"{len(self.unchanged)} unchanged")

    def counts(self) -> dict[str, int]:
        return {"add": len(self.added), "change": len(self.changed), "remove": len(self.removed),
                "unchanged": len(self.unchanged)}


Specs = Mapping[str, dict[str, Any]]
Hashes = Mapping[str, str]


class SpecsOf(Mapping[str, Any]):
    """A read-only view name -> record.spec (or another attribute) over a mapping, with no copying."""

    def __init__(self, records: Mapping[str, Any], attr: str = "spec") -> None:
        self._records, self._attr = records, attr

    def __getitem__(self, name: str) -> Any:
        return getattr(self._records[name], self._attr)

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records


def plan(desired: Specs, applied: Specs, *, desired_hashes: Hashes | None = None,
         applied_hashes: Hashes | None = None) -> Plan:
    """Added, changed (with field-level differences), removed and unchanged schedules.

    Hashes of the whole spec may be passed in when the caller already has them (the daemon
    does, for 10,000 schedules on every reload); otherwise they are computed here.
    """
    dh = desired_hashes if desired_hashes is not None else {n: spec_hash(s) for n, s in desired.items()}
    ah = applied_hashes if applied_hashes is not None else {n: spec_hash(s) for n, s in applied.items()}
    # Set algebra over the hash maps, so 10,000 unchanged schedules cost microseconds each.
    differ = {n for n, _ in dh.items() - ah.items()}  # added or changed
    added_names = dh.keys() - ah.keys()
    moved = differ - added_names
    added = tuple(Change(Action.ADD, n, None, None) for n in sorted(added_names))
    removed = tuple(Change(Action.REMOVE, n, None, None) for n in sorted(ah.keys() - dh.keys()))
    changed = tuple(Change(Action.CHANGE, n, applied[n], desired[n], tuple(diff(applied[n], desired[n])))
                    for n in sorted(moved))
    return Plan(added, changed, removed, frozenset(dh.keys() - differ))


def moves_fire_times(change: Change) -> bool:
    """Does a change need the timer touched? (Metadata-only edits never do.)"""
    if change.action is not Action.CHANGE:
        return True
    assert change.old is not None
    assert change.new is not None
    return fingerprint(change.old) != fingerprint(change.new)


def diff(old: Any, new: Any, path: str = "") -> Iterator[FieldChange]:
    """Leaf-level differences between two JSON-like values, in a stable order."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else key
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a is _MISSING:
                yield FieldChange(sub, None, b, old_present=False)
            elif b is _MISSING:
                yield FieldChange(sub, a, None, new_present=False)
            else:
                yield from diff(a, b, sub)
    elif old != new or type(old) is not type(new):
        yield FieldChange(path, old, new)
