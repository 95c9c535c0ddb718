"""The scale curve: the reconciler at 1,000 to 100,000 schedules, beside bare APScheduler 3.11.

Run: .venv/bin/python benchmarks/bench_scale.py [--sizes 1000,10000,30000,100000] [--repeat 3] [--trials 40]
     .venv/bin/python benchmarks/bench_scale.py --commits   (SQLite's durable commits a second, alone)

For each size, alternating with the peer in the same run, `--repeat` times (medians printed):
- cold start to ready: a new ledger and no parse cache, from the process start to the first
  `revision.applied` (the moment /readyz turns 200);
- warm restart: the same directory and ledger again (the parse cache is used where there is one);
- RSS at ready, above the empty daemon (`--allow-empty` on an empty directory);
- one-file change to live, p50/p99: an atomic rename over one file to its `revision.applied` line;
- ledger bytes per revision: the growth of the ledger (database and WAL, after a checkpoint)
  over the trials, divided by their number.
The peer is a process that imports APScheduler, adds the same number of interval jobs to a
BackgroundScheduler (its memory store: it has no restart and no ledger) and reschedules one job per
trial; its RSS is taken above the same process before it adds any job.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconcile import FUTURE, rss_mib, ts
from common import BIN, ROOT, WORK, make_tree, schedule_yaml

PEER = """
import sys, time, statistics
t0 = float(sys.argv[2])
from datetime import timedelta
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS:")][0].split()[1]) / 1024
def noop(): pass
n, trials = int(sys.argv[1]), int(sys.argv[3])
s = BackgroundScheduler(timezone="UTC")
s.start()
empty = rss()
for i in range(n):
    s.add_job(noop, IntervalTrigger(minutes=15 + i % 60), id=f"job-{i}")
ready = time.time() - t0
full = rss()
lat = []
for t in range(trials):
    a = time.perf_counter()
    s.reschedule_job(f"job-{(t * 7919) % n}", trigger=IntervalTrigger(minutes=16 + t))
    lat.append((time.perf_counter() - a) * 1000)
lat.sort()
print(ready, full - empty, statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))])
s.shutdown(wait=False)
"""


def wait(log: Path, kind: str, count: int, timeout: float = 120) -> dict[str, object]:
    """The `count`-th event of this kind in a JSON log; a line still being written is skipped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for line in log.read_text().splitlines():
            if f'"{kind}"' in line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    break
        found = [e for e in found if e.get("event") == kind]
        if len(found) >= count:
            return found[count - 1]  # type: ignore[no-any-return]
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {kind} #{count} in {log}")


def peer(n: int, trials: int) -> tuple[float, float, float, float]:
    out = subprocess.run([sys.executable, "-c", PEER, str(n), repr(time.time()), str(trials)],
                         capture_output=True, text=True, check=True)
    ready, rss, p50, p99 = (float(x) for x in out.stdout.split())
    return ready, rss, p50, p99


def start(base: Path, sched: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], float]:
    with log.open("w") as fh:
        t0 = time.time()
        proc = subprocess.Popen([str(BIN), "run", "--dir", str(sched), "--ledger", str(base / "ledger.db"),
                                 "--log-format", "json", "--listen", "127.0.0.1:0", *extra],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=base)
    try:
        wait(log, "reconciler.started", 1, timeout=900)
    except BaseException:
        proc.kill()
        raise
    return proc, ts(wait(log, "revision.applied", 1)) - t0


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=120)


def settle(base: Path, timeout: float = 600) -> None:
    """After ready, the first revision is recorded (every spec, a base) and the parse cache
    written, off the reconcile path; trials measure the steady state after that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{base / 'ledger.db'}?mode=ro", uri=True, timeout=30)
        try:
            if db.execute("SELECT count(*) FROM revisions").fetchone()[0] >= 1:
                break
        except sqlite3.Error:
            pass
        finally:
            db.close()
        time.sleep(0.2)
    # At 100,000 the first revision's specs take seconds to write after its row appears: wait
    # until the ledger and the parse cache stop growing, or the first trials pay for it.
    sizes, still = -1, 0
    while time.monotonic() < deadline and still < 4:
        now = sum(p.stat().st_size for p in [*base.glob("ledger.db*"), *base.glob(".reconciler*")] if p.is_file())
        still = still + 1 if now == sizes else 0
        sizes = now
        time.sleep(0.5)


def ledger_bytes(base: Path) -> int:
    db = sqlite3.connect(base / "ledger.db")
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return sum(p.stat().st_size for p in base.glob("ledger.db*") if not p.name.endswith(".parse-cache"))


def empty_rss(base: Path) -> float:
    empty = base / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    for old in base.glob("ledger.db*"):
        old.unlink()
    log = base / "empty.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([str(BIN), "run", "--dir", str(empty), "--ledger", str(base / "ledger.db"),
                                 "--allow-empty", "--log-format", "json", "--listen", "127.0.0.1:0"],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=base)
    try:
        wait(log, "reconciler.started", 1)
        time.sleep(0.5)
        return rss_mib(proc.pid)
    finally:
        stop(proc)


def clear(base: Path) -> None:
    for old in [*base.glob("ledger.db*"), *base.glob(".reconciler-cache*")]:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    shutil.rmtree(base / ".reconciler", ignore_errors=True)


def one_size(n: int, repeat: int, trials: int) -> dict[str, Any]:
    base = WORK / f"scale-{n}"
    sched = base / "schedules"
    make_tree(sched, n, start=FUTURE)
    for extra in sched.glob("job-*.yaml"):  # a tree left by a larger size
        if int(extra.stem[4:]) >= n:
            extra.unlink()
    log = base / "daemon.log"
    colds, warms, rsss, p50s, p99s, per_rev = [], [], [], [], [], []
    peer_ready, peer_rss, peer_p50, peer_p99 = [], [], [], []
    empty = empty_rss(base)
    for r in range(repeat):
        clear(base)
        proc, cold = start(base, sched, log)
        colds.append(cold)
        rsss.append(rss_mib(proc.pid) - empty)
        settle(base)
        before = ledger_bytes(base)
        rng = random.Random(r)
        latencies = []
        for trial in range(trials):
            i = rng.randrange(n)
            target = sched / f"job-{i:05d}.yaml"
            text = schedule_yaml(i, random.Random(7), FUTURE).replace(
                "history: {keep: 50}", f"history: {{keep: {51 + trial + r * trials}}}")
            tmp = sched / f".tmp-{trial}.yaml"
            tmp.write_text(text)
            renamed = time.time()
            os.replace(tmp, target)
            applied = wait(log, "revision.applied", trial + 2)
            latencies.append((ts(applied) - renamed) * 1000)
            time.sleep(0.05)
        time.sleep(1.0)  # the recorder writes the last revisions
        per_rev.append((ledger_bytes(base) - before) / trials)
        stop(proc)
        # Put the files back as the generator wrote them, so each repetition starts equal.
        make_tree(sched, n, start=FUTURE)
        proc, _ = start(base, sched, log)  # a restart after the edits: the cache learns today's files
        stop(proc)
        proc, warm = start(base, sched, log)
        warms.append(warm)
        stop(proc)
        latencies.sort()
        p50s.append(statistics.median(latencies))
        p99s.append(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])
        ready, rss, p50, p99 = peer(n, trials)
        peer_ready.append(ready)
        peer_rss.append(rss)
        peer_p50.append(p50)
        peer_p99.append(p99)
    m = statistics.median
    return {"cold": m(colds), "warm": m(warms), "rss": m(rsss), "empty": empty, "p50": m(p50s), "p99": m(p99s),
            "per_rev": m(per_rev), "peer_ready": m(peer_ready), "peer_rss": m(peer_rss), "peer_p50": m(peer_p50),
            "peer_p99": m(peer_p99), "cold_range": (min(colds), max(colds)), "warm_range": (min(warms), max(warms))}


def sqlite_commits(repeat: int, seconds: float = 3.0) -> None:
    """One-row transactions as the ledger writes them (WAL, synchronous=FULL, BEGIN IMMEDIATE),
    from one thread: what this disk sustains, the bound of every durable claim and finish."""
    rates = []
    for r in range(repeat):
        path = WORK / f"commits-{r}.db"
        for old in WORK.glob(f"commits-{r}.db*"):
            old.unlink()
        WORK.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES ('x')")
            db.execute("COMMIT")
            n += 1
        rates.append(n / (time.perf_counter() - t0))
        db.close()
    rates.sort()
    print(f"SQLite commits (WAL, synchronous=FULL, one thread): median {statistics.median(rates):,.0f}/s "
          f"(range {rates[0]:,.0f}-{rates[-1]:,.0f}) over {repeat} runs of {seconds:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,30000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--commits", action="store_true", help="measure SQLite's commits a second only")
    args = ap.parse_args()
    if args.commits:
        sqlite_commits(max(args.repeat, 5))
        return
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "reconciler")], check=True)
    print(f"repeat {args.repeat}, {args.trials} one-file changes per repetition; medians; peer = bare APScheduler")
    print("| schedules | cold start (peer) | warm restart | RSS above empty (peer) | per schedule | "
          "change p50 / p99 (peer) | ledger bytes / revision |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        f = one_size(n, args.repeat, args.trials)
        print(f"| {n:,} | {f['cold']:.2f} s ({f['peer_ready']:.2f} s, {f['cold'] / f['peer_ready']:.1f}x) "
              f"| {f['warm']:.2f} s ({f['warm'] / f['cold']:.2f}x of cold) "
              f"| {f['rss']:.1f} MiB ({f['peer_rss']:.1f} MiB, {f['rss'] / max(f['peer_rss'], 0.1):.1f}x) "
              f"| {f['rss'] * 1024 / n:.2f} KiB ({f['peer_rss'] * 1024 / n:.2f}) "
              f"| {f['p50']:.1f} / {f['p99']:.1f} ms ({f['peer_p50']:.2f} / {f['peer_p99']:.2f} ms) "
              f"| {f['per_rev']:,.0f} |", flush=True)
        print(f"  cold range {f['cold_range'][0]:.2f}-{f['cold_range'][1]:.2f} s, warm range "
              f"{f['warm_range'][0]:.2f}-{f['warm_range'][1]:.2f} s, empty daemon {f['empty']:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
