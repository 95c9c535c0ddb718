"""GET /api/v1/graph's work with 10,000 schedules, 1,000 of them in dependency chains of 10, and
100,000 runs, measured in-process; and the dashboard's layout of that graph by dagre, in Node.

Run: .venv/bin/python benchmarks/bench_graph.py
The answer's shape (nodes and edges) is cached per revision: a first request after a new revision
computes it (cold), the next ones only read states and last runs (warm). Both are timed in the
same process, alternating, and their ratio printed. The layout is timed where `node` and
tools/vendor/node_modules exist (npm ci --prefix tools/vendor).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.ledger.base import to_micros
from reconciler.ledger.sqlite import SqliteLedger
from reconciler.service import views
from reconciler.service.graph import ShapeCache, graph
from reconciler.service.live import Live, Status

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES, CHAINED, CHAIN, RUNS, REPEATS = 10_000, 1_000, 10, 100_000, 15
NOW = datetime(2026, 3, 2, tzinfo=UTC)

LAYOUT = """
const dagre = require(process.argv[1]);
const data = JSON.parse(require("fs").readFileSync(0, "utf8"));
const times = [];
for (let rep = 0; rep < 5; rep++) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of data.nodes) g.setNode(n.name, { width: Math.max(90, n.name.length * 7.5 + 28), height: 34 });
  data.edges.forEach((e, i) => g.setEdge(e.from, e.to, {}, `${e.kind}:${i}`));
  const t = process.hrtime.bigint(); dagre.layout(g); times.push(Number(process.hrtime.bigint() - t) / 1e6);
}
console.log(JSON.stringify(times));
"""


def schedules() -> dict[str, Schedule]:
    loader, out = Loader(), {}
    for i in range(SCHEDULES):
        name = f"job-{i:05d}"
        spec: dict[str, object] = {"name": name, "schedule": {"cron": "0 2 * * *"}, "run": {"command": ["/bin/true"]}}
        if i < CHAINED and i % CHAIN:
            spec["schedule"] = {"after": [f"job-{i - 1:05d}"]}
            if i % CHAIN == CHAIN - 1:  # the chain's last also requires its first
                spec["requires"] = [{"schedule": f"job-{i - CHAIN + 1:05d}", "status": "succeeded"}]
        built = build_from_spec(spec, f"{name}.yaml", loader, NOW)
        assert built is not None
        out[name] = built
    return out


def main() -> None:
    base = WORK / "graph"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    path = base / "ledger.db"
    SqliteLedger(path).close()
    rng = random.Random(7)
    t0 = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, finished_at, exit_code,"
            " output) VALUES (?, ?, 1, 'schedule', ?, 'r', ?, ?, 0, '')",
            [(f"job-{rng.randrange(SCHEDULES):05d}", t0 + i * 1_000_000, "failed" if i % 20 == 0 else "succeeded",
              t0 + i * 1_000_000, t0 + i * 1_000_000 + 500_000) for i in range(RUNS)])
    scheds = schedules()
    live = Live(status=Status(applied_revision="r1", ready=True), schedules=scheds)
    ledger = SqliteLedger(path)
    warm_cache = ShapeCache()
    data = graph(live, ledger, warm_cache, now=NOW)
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(REPEATS):  # alternating, so both see the same machine
        t = time.perf_counter()
        graph(live, ledger, ShapeCache(), now=NOW)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        graph(live, ledger, warm_cache, now=NOW)
        warm.append(time.perf_counter() - t)
    # The nodes' last runs: one indexed look-up each (what graph() does) against its peer, the
    # newest run of every schedule in one query; alternating.
    names = [n["name"] for n in data["nodes"]]
    each: list[float] = []
    every: list[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        views.last_runs(ledger, names)
        each.append(time.perf_counter() - t)
        t = time.perf_counter()
        views.last_runs(ledger)
        every.append(time.perf_counter() - t)
    ledger.close()
    c, w = statistics.median(cold) * 1000, statistics.median(warm) * 1000
    print(f"{SCHEDULES} schedules, {CHAINED} in chains of {CHAIN}, {RUNS} runs: {len(data['nodes'])} nodes, "
          f"{len(data['edges'])} edges")
    print(f"/api/v1/graph work, median of {REPEATS}: cold (shape computed) {c:.1f} ms, warm (cached) {w:.1f} ms, "
          f"cold/warm {c / w:.2f}")
    e, a = statistics.median(each) * 1000, statistics.median(every) * 1000
    print(f"the nodes' last runs, median of {REPEATS}: one look-up per node {e:.1f} ms, one query for every "
          f"schedule {a:.1f} ms, ratio {a / e:.2f}")
    dagre = ROOT / "tools" / "vendor" / "node_modules" / "@dagrejs" / "dagre"
    if shutil.which("node") and dagre.is_dir():
        out = subprocess.run(["node", "-e", LAYOUT, str(dagre)], input=json.dumps(data), capture_output=True,
                             text=True, check=True).stdout
        times = json.loads(out)
        print(f"dagre layout of that graph in Node, median of {len(times)}: {statistics.median(times):.0f} ms")
    else:
        print("dagre layout: skipped (no node, or npm ci --prefix tools/vendor has not run)")


if __name__ == "__main__":
    main()
