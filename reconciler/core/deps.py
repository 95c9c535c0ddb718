"""The dependency graph between schedules (`schedule.after`, `requires`), as set rules: every
reference names a schedule of the set, there is no cycle, and no edge crosses a `--selector`
shard. Pure: it works on names, places and labels.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from typing import Any, NamedTuple

from reconciler.core.model import SELF, Source
from reconciler.core.problems import Problem
from reconciler.core.selectors import selects


class DepRef(NamedTuple):
    """One schedule's place in the graph: the names it follows or waits for."""

    name: str
    source: Source
    upstreams: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    after: tuple[str, ...] = ()  # those of `upstreams` it follows (the rest it `requires`)

    def pointer(self, upstream: str) -> tuple[str, ...]:
        return ("schedule", "after") if upstream in self.after else ("requires",)


def ref_of(spec: Mapping[str, Any], source: Source) -> DepRef | None:
    """The graph entry of a checked spec, or None when it has no dependency."""
    sched = spec.get("schedule")
    after = sched.get("after", ()) if isinstance(sched, dict) else ()
    required = [r["schedule"] for r in spec.get("requires", ()) if r["schedule"] != SELF]
    ups = tuple(dict.fromkeys([*after, *required]))
    if not ups:
        return None
    return DepRef(spec["name"], source, ups, tuple(sorted(spec.get("labels", {}).items())), tuple(after))


def _at(src: Source) -> str:
    return f"{src.path}:{src.line}"


def graph_problems(refs: Mapping[str, DepRef], known: Collection[str], labels: Mapping[str, Mapping[str, str]],
                   selector: Mapping[str, str] | None = None) -> list[Problem]:
    """Unknown references, cycles (each member names every file and line of its cycle), and, with a
    selector, edges between a schedule it selects and one it does not."""
    out: list[Problem] = []
    for name in sorted(refs):
        ref = refs[name]
        for up in ref.upstreams:
            if up not in known:
                out.append(Problem(ref.source.path, ref.source.line, 1, ref.pointer(up),
                                   f"depends on {up!r}, which no schedule of the directory is named",
                                   document=ref.source.document))
            elif selector and selects(selector, labels.get(name, {})) != selects(selector, labels.get(up, {})):
                out.append(Problem(ref.source.path, ref.source.line, 1, ref.pointer(up),
                                   f"depends on {up!r}, which --selector "
                                   f"{','.join(f'{k}={v}' for k, v in sorted(selector.items()))} puts in another "
                                   "shard: the dependency cannot be honoured", document=ref.source.document))
    for cycle in cycles({n: [u for u in r.upstreams if u in refs or u == n] for n, r in refs.items()}):
        where = " -> ".join(f"{n} ({_at(refs[n].source)})" for n in [*cycle, cycle[0]])
        for n in sorted(cycle, key=lambda m: (refs[m].source.path, refs[m].source.line)):
            src = refs[n].source
            out.append(Problem(src.path, src.line, 1, ("schedule", "after"),
                               f"dependency cycle (each depends on the next): {where}",
                               document=src.document))
    return out


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected component that is a cycle (more than one node, or a self-loop), each
    in graph order starting from its smallest name. Iterative Tarjan: chains are deep."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Any]] = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in edges.get(node, ()):
                    found.append(_ordered(comp, edges))
    return sorted(found)


def _ordered(comp: list[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """The component as a walk along its edges from its smallest name (a simple cycle reads as one)."""
    members = set(comp)
    start = min(comp)
    walk, node = [start], start
    while True:
        nxt = next((u for u in edges.get(node, ()) if u in members and u not in walk), None)
        if nxt is None:
            break
        walk.append(nxt)
        node = nxt
    walk.extend(sorted(members - set(walk)))
    return walk


def downstreams(refs: Mapping[str, DepRef]) -> dict[str, list[str]]:
    """Who follows or waits for each schedule, sorted."""
    out: dict[str, list[str]] = {}
    for name, ref in refs.items():
        for up in ref.upstreams:
            out.setdefault(up, []).append(name)
    return {k: sorted(v) for k, v in out.items()}


def followers(refs: Mapping[str, DepRef], live: Container[str]) -> dict[str, tuple[str, ...]]:
    """Upstream -> the live schedules that run `after` it (trigger mode), sorted. From the graph,
    which holds only schedules with dependencies, so it costs nothing per schedule without any."""
    out: dict[str, list[str]] = {}
    for name, ref in refs.items():
        if name in live:
            for up in ref.after:
                out.setdefault(up, []).append(name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def edges_of(refs: Mapping[str, DepRef]) -> set[tuple[str, str]]:
    """The graph as (upstream, downstream) pairs."""
    return {(up, name) for name, ref in refs.items() for up in ref.upstreams}
