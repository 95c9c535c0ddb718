"""The whole dependency graph (issue 18), for GET /api/v1/graph and the dashboard's Graph view.

Its shape (which schedules, which edges) depends on the applied revision only, so it is computed
once per revision and kept; what changes between requests (a node's state and last run) is read
per request, for the graph's nodes only. The answer is bounded: past MAX_NODES nodes it is cut,
and says so, so that a tree of 10,000 chained schedules cannot make one answer unbounded.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.core.model import SELF, Schedule
from reconciler.ledger.base import Ledger
from reconciler.service import views
from reconciler.service.live import Live

if TYPE_CHECKING:
    from starlette.routing import Route

    from reconciler.service.http import Site

MAX_NODES = 2000


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str
    kind: str  # after | requires
    on: str | None = None  # after: which upstream outcomes trigger it
    all: bool = False  # after: waits for every upstream of the same slot
    status: str | None = None  # requires: the status the upstream's last run must have
    within_seconds: float | None = None  # requires: how recent that run must be

    def view(self) -> dict[str, Any]:
        return {"from": self.upstream, "to": self.downstream, "kind": self.kind, "on": self.on, "all": self.all,
                "status": self.status, "within_seconds": self.within_seconds}


@dataclass(frozen=True)
class Shape:
    """A revision's graph without what changes between requests."""

    nodes: tuple[str, ...]  # sorted; at most MAX_NODES
    edges: tuple[Edge, ...]  # between those nodes
    total_nodes: int
    total_edges: int


def edges_of(schedules: Mapping[str, Schedule]) -> list[Edge]:
    """Every edge upstream -> downstream, `after` before `requires` for each downstream."""
    out: list[Edge] = []
    for name in sorted(schedules):
        deps = schedules[name].deps
        out.extend(Edge(up, name, "after", on=deps.on, all=deps.all) for up in deps.after)
        out.extend(Edge(r.schedule, name, "requires", status=r.status,
                        within_seconds=r.within.total_seconds() if r.within is not None else None)
                   for r in deps.requires if r.schedule != SELF)
    # Validation rejects unknown names; a reference to none is still never drawn as a node.
    return [e for e in out if e.upstream in schedules]


def shape_of(schedules: Mapping[str, Schedule], max_nodes: int = MAX_NODES) -> Shape:
    edges = edges_of(schedules)
    names = sorted({e.upstream for e in edges} | {e.downstream for e in edges})
    kept = set(names[:max_nodes])
    inside = tuple(e for e in edges if e.upstream in kept and e.downstream in kept)
    return Shape(tuple(names[:max_nodes]), inside, len(names), len(edges))


class ShapeCache:
    """The shape of the newest revision asked for. A revision is one schedules map (a new step
    that changes schedules publishes a new map), so the map's identity is the key; it is held,
    so the identity cannot be reused by another map."""

    def __init__(self, max_nodes: int = MAX_NODES) -> None:
        self.max_nodes = max_nodes
        self._lock = threading.Lock()
        self._key: tuple[str | None, Mapping[str, Schedule]] | None = None
        self._shape: Shape | None = None
        self.computed = 0  # how many times a shape was computed (tests)

    def get(self, live: Live) -> Shape:
        with self._lock:
            key = self._key
            if key is None or self._shape is None or key[0] != live.revision or key[1] is not live.schedules:
                self._shape = shape_of(live.schedules, self.max_nodes)
                self._key = (live.revision, live.schedules)
                self.computed += 1
            return self._shape


def graph(live: Live, ledger: Ledger, cache: ShapeCache, *, now: datetime) -> dict[str, Any]:
    shape = cache.get(live)
    nxt = live.next_fire_times()
    names = shape.nodes
    # One indexed look-up per node: at 1,000 nodes and 100,000 runs far cheaper than the newest run
    # of every schedule in one query (docs/benchmarks.md), and the nodes are bounded.
    last = views.last_runs(ledger, names)
    paused = views.active_pauses(ledger, now)
    nodes = []
    for name in names:
        s = live.schedules[name]
        run = last.get(name)
        nodes.append({"name": name, "description": s.description, "state": live.state_of(s, nxt),
                      "kind": "after" if s.deps.after else s.timing.kind,
                      "last_status": run.status if run else None, "last_run_id": run.id if run else None,
                      "last_slot": views.iso(run.slot) if run else None, "paused": name in paused})
    return {"revision": live.revision, "nodes": nodes, "edges": [e.view() for e in shape.edges],
            "total_nodes": shape.total_nodes, "total_edges": shape.total_edges,
            "truncated": len(names) < shape.total_nodes}


def routes(site: Site) -> list[Route]:
    """/api/v1/graph, the Graph view's script and style, and the layout library it uses."""
    import asyncio

    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from reconciler.service.http import _asset

    cache = ShapeCache()
    script, style, dagre = _asset("graph.js"), _asset("graph.css"), _asset("vendor/dagre.min.js")

    async def api(_: Request) -> Response:
        data = await asyncio.to_thread(graph, site.live(), site.ledger, cache, now=site.clock())
        return JSONResponse(data)

    async def graph_js(_: Request) -> Response:
        return Response(script, media_type="text/javascript")

    async def graph_css(_: Request) -> Response:
        return Response(style, media_type="text/css")

    async def dagre_js(_: Request) -> Response:
        return Response(dagre, media_type="text/javascript")

    return [Route("/api/v1/graph", api), Route("/graph.js", graph_js), Route("/graph.css", graph_css),
            Route("/vendor/dagre.min.js", dagre_js)]
