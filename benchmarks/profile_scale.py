"""Where a schedule's memory and a load's time go, in-process (issue 16): tracemalloc grouped by
source line after a whole load of N schedules, and the bytes kept per schedule by each kind of object.

Run: .venv/bin/python benchmarks/profile_scale.py [--n 10000] [--top 25]
     .venv/bin/python benchmarks/profile_scale.py --kinds [--n 10000] [--fleet minutely]   (bytes a
     schedule by object kind, each object counted once, in the order source records, index, timer;
     and the process's RSS growth for the load and the timer's jobs)
     .venv/bin/python benchmarks/profile_scale.py --daemon [--n 100000] [--fleet minutely]   (the
     daemon's RSS at ready above the empty daemon; `minutely` fleets are due within the timer's
     horizon, so every schedule is an APScheduler job; they start minutes later, and the daemon
     is stopped before they fire)
     .venv/bin/python benchmarks/profile_scale.py --time [--n 100000]   (pyinstrument: a cold and a
     warm load, in one process each step; `pip install pyinstrument`)
     .venv/bin/python benchmarks/profile_scale.py --rescan [--n 100000]   (a one-file change against
     the periodic whole rescan, on a loaded index: medians of 5)
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconcile import FUTURE, rss_mib
from common import ROOT, WORK, make_tree

from reconciler.service.source import DirectorySource


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--time", action="store_true", help="profile the time of a cold and a warm load instead")
    ap.add_argument("--rescan", action="store_true", help="time a one-file change and a whole rescan")
    ap.add_argument("--kinds", action="store_true", help="bytes a schedule by object kind, and RSS")
    ap.add_argument("--daemon", action="store_true", help="the daemon's RSS at ready above the empty daemon")
    ap.add_argument("--fleet", choices=("future", "minutely"), default="future",
                    help="future: bench_scale's files (first fire in 2030); minutely: every: 1m")
    args = ap.parse_args()
    sched = WORK / f"scale-{args.n}" / "schedules"
    make_tree(sched, args.n, start=FUTURE)
    for extra in sched.glob("job-*.yaml"):
        if int(extra.stem[4:]) >= args.n:
            extra.unlink()
    if args.fleet == "minutely":
        sched = minutely(sched, WORK / f"minutely-{args.n}" / "schedules")
    if args.kinds:
        kinds(sched, args.n)
        return
    if args.daemon:
        daemon_rss(sched)
        return
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


_WHEN = re.compile(r"^schedule:\n(?:  .*\n)+", re.MULTILINE)


def minutely(source: Path, target: Path) -> Path:
    """The same files, each firing every minute from a few minutes on (within the timer's horizon,
    so each is an APScheduler job at once, yet none fires while a measurement runs)."""
    start = (datetime.now(UTC) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:00Z")
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.yaml"):
        old.unlink()
    for path in source.glob("job-*.yaml"):
        text = _WHEN.sub(f'schedule:\n  every: 1m\n  start: "{start}"\n', path.read_text())
        (target / path.name).write_text(text)
    return target


def _rss() -> float:
    return float(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def kinds(sched: Path, n: int) -> None:
    """What stays after a whole load and the timer's jobs, by object kind: each object reached from
    the snapshot, then the source's index, then the timer, counted once (sys.getsizeof plus the
    GC header of tracked objects; shared module-level objects are left out)."""
    from reconciler.core.plan import plan
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.timer import Timer

    timer = Timer(lambda *_: None)
    timer.start(paused=True)
    gc.collect()
    r0 = _rss()
    src = DirectorySource(sched)
    now = datetime.now(UTC)
    snap = src.full(now)
    r1 = _rss()
    everything = plan(snap.schedules, {}, desired_hashes=dict(snap.hashes), applied_hashes={})  # type: ignore[arg-type]
    apply_plan(timer, everything, snap.schedules, now)
    gc.collect()
    r2 = _rss()
    print(f"{n:,} schedules ({sched.parent.name}); RSS growth a schedule: load {(r1 - r0) * 2**20 / n:,.0f} B, "
          f"with the timer's jobs {(r2 - r0) * 2**20 / n:,.0f} B; {len(timer._scheduler.get_jobs()):,} APScheduler "
          f"jobs, {len(timer._shelf.entries):,} shelved")
    seen: set[int] = set()
    total = 0
    index = src._index
    groups: list[tuple[str, Iterable[Any]]] = [
        ("records and published maps (the snapshot)", [snap]),
        ("the index: files map, set rules, stats, directories", [index.files, index.rules, index.dirs, src._stats,
                                                                 index.users]),
        ("the timer: APScheduler's jobs and store, the shelf", [timer._store._jobs, timer._store._jobs_index,
                                                                timer._shelf.heap, timer._shelf.entries]),
    ]
    for label, roots in groups:
        size, count = _walk(roots, seen)
        part = sum(size.values())
        total += part
        print(f"== {label}: {part / n:,.0f} B a schedule")
        for kind, b in size.most_common(12):
            if b / n >= 1:
                print(f"  {b / n:7,.0f} B  {count[kind] / n:5.2f} a schedule  {kind}")
    print(f"total {total / n:,.0f} B a schedule (objects only: no allocator slack)")


_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType)


def _walk(roots: Iterable[Any], seen: set[int]) -> tuple[Counter[str], Counter[str]]:
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    stack = list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _SKIP):
            continue
        seen.add(id(o))
        kind = type(o).__name__
        size[kind] += sys.getsizeof(o) + (16 if gc.is_tracked(o) else 0)
        count[kind] += 1
        stack.extend(gc.get_referents(o))
    return size, count


def daemon_rss(sched: Path) -> None:
    from bench_scale import clear, empty_rss, start, stop

    base = sched.parent
    empty = empty_rss(base)
    clear(base)
    proc, ready = start(base, sched, base / "daemon.log")
    try:
        rss = rss_mib(proc.pid) - empty
    finally:
        stop(proc)
    n = len(list(sched.glob("job-*.yaml")))
    print(f"{n:,} schedules ({base.name}): ready in {ready:.1f} s, RSS above the empty daemon {rss:.1f} MiB, "
          f"{rss * 1024 / n:.2f} KiB a schedule")


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
