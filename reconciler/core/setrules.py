"""The rules over the set of schedules, as opposed to each one: a name is held once across the
directory, and the dependency graph (core.deps) names known schedules and has no cycle.

One incremental object serves both callers: `loader.combine` (validate, plan, next, trigger)
adds every file once, and the daemon's directory index keeps one across file events, adding and
removing one file's result at a time, at the cost of that file alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from reconciler.core.deps import DepRef, graph_problems
from reconciler.core.model import Schedule, Source
from reconciler.core.problems import Problem

if TYPE_CHECKING:
    from reconciler.core.loader import FileResult

# What identifies a file to the caller: its position in a single pass, its relative path in the
# daemon. Holders of a repeated name are listed in this order, then by line.
K = TypeVar("K", int, str)


class SetRules(Generic[K]):
    """Names held once and where, built schedules by name, and the repeated names. A name held
    once costs a few dict entries, not an object: the daemon keeps 10,000 of them."""

    def __init__(self) -> None:
        self.unique: dict[str, Schedule] = {}  # built schedules whose name is held once
        self.hashes: dict[str, str] = {}  # their spec hashes
        self._owner: dict[str, K] = {}  # every name held once -> the file holding it
        self._unbuilt: dict[str, Source] = {}  # where such a name stands when it was not built
        self._dupes: dict[str, list[tuple[K, Source, Schedule | None]]] = {}
        self.graph: dict[str, DepRef] = {}  # dependencies (issue 18): schedules that depend on others
        self._graph_keys: dict[str, K] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Every name held once, built or not, in the order first added."""
        return tuple(self._owner)

    def add(self, key: K, result: FileResult) -> None:
        for s in result.schedules:
            self._link(key, s.name, s.source, s)
        for name, source in result.unbuilt:
            self._link(key, name, source, None)
        for ref in result.graph:
            self.graph[ref.name], self._graph_keys[ref.name] = ref, key

    def remove(self, key: K, result: FileResult) -> None:
        """Forget what `add(key, result)` added."""
        for name in {name for name, _ in result.names}:
            self._unlink(name, key)
        for ref in result.graph:
            if self._graph_keys.get(ref.name) == key:
                del self.graph[ref.name], self._graph_keys[ref.name]

    def graph_problems(self, selector: Mapping[str, str] | None = None) -> list[Problem]:
        """Dependencies on unknown names, cycles, and (with a selector) edges across shards."""
        if not self.graph:
            return []
        labels = {n: s.labels_dict for n, s in self.unique.items()} if selector else {}
        return graph_problems(self.graph, self._owner, labels, selector)

    def problems(self) -> list[Problem]:
        if not self._dupes:
            return []
        return duplicate_problems({name: [source for _, source, _ in sorted(group, key=_order)]
                                   for name, group in self._dupes.items()})

    def _link(self, key: K, name: str, source: Source, schedule: Schedule | None) -> None:
        group = self._dupes.get(name)
        if group is not None:
            group.append((key, source, schedule))
        elif name in self._owner:
            self._dupes[name] = [self._pop(name), (key, source, schedule)]
        else:
            self._hold(key, name, source, schedule)

    def _unlink(self, name: str, key: K) -> None:
        group = self._dupes.get(name)
        if group is None:
            if name in self._owner and self._owner[name] == key:
                self._pop(name)
            return
        group[:] = [entry for entry in group if entry[0] != key]
        if len(group) < 2:
            del self._dupes[name]
            for entry in group:
                self._hold(entry[0], name, entry[1], entry[2])

    def _hold(self, key: K, name: str, source: Source, schedule: Schedule | None) -> None:
        self._owner[name] = key
        if schedule is not None:
            self.unique[name], self.hashes[name] = schedule, schedule.spec_hash
        else:
            self._unbuilt[name] = source

    def _pop(self, name: str) -> tuple[K, Source, Schedule | None]:
        key = self._owner.pop(name)
        schedule = self.unique.pop(name, None)
        if schedule is not None:
            del self.hashes[name]
            return key, schedule.source, schedule
        return key, self._unbuilt.pop(name), None


def _order(entry: tuple[K, Source, Schedule | None]) -> tuple[K, int]:
    return entry[0], entry[1].line


def duplicate_problems(groups: Mapping[str, Sequence[Source]]) -> list[Problem]:
    """One problem at each place a name is used more than once, naming the other places."""
    out = []
    for name in sorted(groups):
        group = groups[name]
        for src in group:
            others = ", ".join(f"{o.path}:{o.line}" for o in group if o is not src)
            out.append(Problem(src.path, src.line, 1, ("name",),
                               f"name {name!r} is used more than once (also at {others})", document=src.document))
    return out
