"""Where a schedule's memory and a load's time go, in-process (issue 16): tracemalloc grouped by
source line after a whole load of N schedules, and the bytes kept per schedule by each kind of object.

Run: .venv/bin/python benchmarks/profile_scale.py [--n 10000] [--top 25]
     .venv/bin/python benchmarks/profile_scale.py --time [--n 100000]   (pyinstrument: a cold and a
     warm load, in one process each step; `pip install pyinstrument`)
     .venv/bin/python benchmarks/profile_scale.py --rescan [--n 100000]   (a one-file change against
     the periodic whole rescan, on a loaded index: medians of 5)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconcile import FUTURE
from common import ROOT, WORK, make_tree

from reconciler.service.source import DirectorySource


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--time", action="store_true", help="profile the time of a cold and a warm load instead")
    ap.add_argument("--rescan", action="store_true", help="time a one-file change and a whole rescan")
    args = ap.parse_args()
    sched = WORK / f"scale-{args.n}" / "schedules"
    make_tree(sched, args.n, start=FUTURE)
    for extra in sched.glob("job-*.yaml"):
        if int(extra.stem[4:]) >= args.n:
            extra.unlink()
    if args.time:
        profile_time(sched)
        return
    if args.rescan:
        rescan(sched)
        return
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    t = time.perf_counter()
    src = DirectorySource(sched)
    snap = src.full(datetime.now(UTC))
    took = time.perf_counter() - t
    gc.collect()
    after = tracemalloc.take_snapshot()
    n = len(snap.schedules)
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{n} schedules loaded in {took:.2f} s (tracemalloc on); kept {total / n:,.0f} B a schedule")
    for s in stats[: args.top]:
        f = s.traceback[0]
        where = f.filename.split("site-packages/")[-1].replace(f"{ROOT}/", "")
        print(f"{s.size_diff / n:8,.0f} B/schedule  {where}:{f.lineno}")


def rescan(sched: Path) -> None:
    """What the watch loop does on the reconcile thread: `changed` for a file event, and every
    `rescan` (60 s by default) `rescan`: a listing and a stat per file; before, `full` (the same,
    then the index rebuilt and compared)."""
    import os
    import statistics

    from reconciler.service import source

    src = DirectorySource(sched)
    src.full(datetime.now(UTC))
    source._SETTLED_NS = -(10**12)  # every file counts as settled: the rescan only stats it
    src.full(datetime.now(UTC))
    one, whole, cheap = [], [], []
    target = sched / "job-00001.yaml"
    text = target.read_text()
    for i in range(5):
        target.write_text(text.replace("keep: 50", f"keep: {60 + i}"))
        t = time.perf_counter()
        src.changed([str(target)], datetime.now(UTC))
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        src.full(datetime.now(UTC))
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        src.rescan(datetime.now(UTC))
        cheap.append(time.perf_counter() - t)
    target.write_text(text)
    os.utime(target)
    print(f"one-file change: {statistics.median(one) * 1000:.2f} ms; whole rescan: "
          f"{statistics.median(whole) * 1000:.0f} ms; the rescan that reads only what differs: "
          f"{statistics.median(cheap) * 1000:.0f} ms (medians of 5)")


def profile_time(sched: Path) -> None:
    """A cold load (no parse cache) and a warm one (the cache the cold one wrote), as the daemon's
    first load does them (the helper process included), under pyinstrument."""
    from pyinstrument import Profiler

    from reconciler.service.parsecache import ParseCache

    cache_path = sched.parent / "profile.parse-cache"
    cache_path.unlink(missing_ok=True)
    for step in ("cold", "warm"):
        cache = ParseCache(cache_path)
        src = DirectorySource(sched, cache=cache)
        profiler = Profiler(interval=0.002)
        t = time.perf_counter()
        profiler.start()
        snap = src.full(datetime.now(UTC))
        profiler.stop()
        print(f"== {step}: {len(snap.schedules)} schedules in {time.perf_counter() - t:.2f} s, "
              f"helper process: {src.last_load_parallel}")
        print(profiler.output_text(unicode=False, show_all=False, color=False))
        if step == "cold":
            cache.save(src.cache_entries())


if __name__ == "__main__":
    main()
