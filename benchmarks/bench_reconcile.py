"""The reconciler with 10,000 schedules: cold start to ready, one file change to live, memory.

Run: .venv/bin/python benchmarks/bench_reconcile.py [--schedules 10000] [--trials 50] [--starts 7] [--restores 3]
Targets (issue 4): cold start < 2 s; change to live p50 < 30 ms, p99 < 100 ms; RSS < 100 MB.
Restore (issue 12): with the directory missing at start-up, the ledger's last revision is live
within the cold-start budget (< 2 s), at the same memory.
Beside it, bare APScheduler adding the same number of jobs (interval triggers) in one process.
--orchestration (issue 18): half of the schedules in 50 directories, each with a `_defaults.yaml`,
and 1,000 in dependency chains of ten (`schedule: {after: [...]}` behind a clock of their own).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, WORK, make_tree, schedule_yaml

FUTURE = "2030-01-01T00:00:00Z"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def events(log: Path, kind: str) -> list[dict[str, object]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            e = json.loads(line)
            if e["event"] == kind:
                out.append(e)
    return out


def wait(log: Path, kind: str, count: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(log, kind)
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {kind} #{count} in {log}")


def ts(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp()


def bare_apscheduler(n: int) -> tuple[float, float]:
    code = f"""
import time, resource
from datetime import timedelta
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
def noop(): pass
t = time.perf_counter()
s = BackgroundScheduler(timezone="UTC")
s.start()
for i in range({n}):
    s.add_job(noop, IntervalTrigger(minutes=15 + i % 60), id=f"job-{{i}}")
dt = time.perf_counter() - t
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS:")][0].split()[1]
print(dt, int(rss) / 1024)
s.shutdown(wait=False)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, rss = out.stdout.split()
    return float(secs), float(rss)


def first_start(base: Path, sched: Path, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """A first start: a new ledger, nothing cached. Ready = the first revision is live in the
    timer, the moment /readyz turns 200."""
    for old in base.glob("ledger.db*"):
        old.unlink()
    with log.open("w") as fh:
        t0 = time.time()
        proc = subprocess.Popen([str(BIN), "run", "--dir", str(sched), "--ledger", str(base / "ledger.db"),
                                 "--log-format", "json", "--listen", "127.0.0.1:0"],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=base)
    wait(log, "reconciler.started", 1)
    return proc, ts(wait(log, "revision.applied", 1)) - t0


def restore(base: Path, log: Path) -> tuple[float, float]:
    """A start with the directory gone: the ledger's last revision runs. Seconds to ready, RSS."""
    with log.open("w") as fh:
        t0 = time.time()
        proc = subprocess.Popen([str(BIN), "run", "--dir", str(base / "missing"), "--ledger", str(base / "ledger.db"),
                                 "--log-format", "json", "--listen", "127.0.0.1:0"],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=base)
    try:
        restored = wait(log, "revision.restored", 1, timeout=600)
        rss = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return ts(restored) - t0, rss


TEAMS = 50


def orchestrated_path(sched: Path, i: int) -> Path:
    return sched / f"team-{i % TEAMS:02d}" / f"job-{i:05d}.yaml" if i % 2 == 0 else sched / f"job-{i:05d}.yaml"


def orchestrated_text(i: int, text: str) -> str:
    """In a chain of ten (i % 10 == 1: job-00001 -> job-00011 -> ... -> job-00091), all but the first
    follow the one before."""
    if i % 10 != 1 or (i // 10) % 10 == 0:
        return text
    head, rest = text.split("schedule:\n", 1)
    return f"{head}schedule:\n  after: [job-{i - 10:05d}]\nrun:{rest.split('run:', 1)[1]}"


def make_orchestrated(sched: Path, n: int) -> None:
    rng = random.Random(7)
    for team in range(TEAMS):
        (sched / f"team-{team:02d}").mkdir(parents=True, exist_ok=True)
        (sched / f"team-{team:02d}" / "_defaults.yaml").write_text(
            f"labels: {{owner: team-{team}}}\npolicy: {{starting_deadline: 2m}}\nrun: {{env: {{TEAM: t{team}}}}}\n")
    for i in range(n):
        orchestrated_path(sched, i).write_text(orchestrated_text(i, schedule_yaml(i, rng, FUTURE)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=10_000)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--starts", type=int, default=7)
    ap.add_argument("--restores", type=int, default=3)
    ap.add_argument("--orchestration", action="store_true", help="defaults files and dependency chains")
    args = ap.parse_args()
    base = WORK / f"reconcile-{args.schedules}{'-orchestration' if args.orchestration else ''}"
    shutil.rmtree(base, ignore_errors=True)
    sched = base / "schedules"
    # Slots start in 2030: nothing fires while we measure reconciling (firing has its own benchmark).
    if args.orchestration:
        make_orchestrated(sched, args.schedules)
    else:
        make_tree(sched, args.schedules, start=FUTURE)
    def where(i: int) -> Path:
        return orchestrated_path(sched, i) if args.orchestration else sched / f"job-{i:05d}.yaml"

    def shape(i: int, text: str) -> str:
        return orchestrated_text(i, text) if args.orchestration else text

    # An installed package has bytecode (pip compiles it; so does our Dockerfile's install); an
    # editable checkout under PYTHONDONTWRITEBYTECODE would compile every module at each start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "reconciler")], check=True)
    log = base / "daemon.log"
    colds = []
    for _ in range(args.starts - 1):
        proc, cold = first_start(base, sched, log)
        colds.append(cold)
        proc.terminate()
        proc.wait(timeout=60)
    proc, cold = first_start(base, sched, log)
    colds.append(cold)
    try:
        rss_ready = rss_mib(proc.pid)
        time.sleep(1.0)  # let the watcher settle
        rng = random.Random(11)
        latencies = []
        for trial in range(args.trials):
            i = rng.randrange(args.schedules)
            target = where(i)
            text = shape(i, schedule_yaml(i, random.Random(7), FUTURE)).replace(
                "history: {keep: 50}", f"history: {{keep: {51 + trial}}}")
            tmp = target.parent / f".tmp-{trial}.yaml"
            tmp.write_text(text)
            renamed = time.time()
            os.replace(tmp, target)  # an atomic write, as editors and git do
            applied = wait(log, "revision.applied", trial + 2)
            latencies.append((ts(applied) - renamed) * 1000)
            time.sleep(0.05)
        rss_after = rss_mib(proc.pid)
        wait(log, "revision.applied", args.trials + 1)
        time.sleep(1.0)  # the revision is recorded in the ledger after it is live
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    restores = sorted(restore(base, base / "restore.log") for _ in range(args.restores))
    colds.sort()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    bare_secs, bare_rss = bare_apscheduler(args.schedules)
    restore_secs = statistics.median(s for s, _ in restores)
    restore_rss = statistics.median(r for _, r in restores)
    print(f"schedules: {args.schedules}, trials: {args.trials}"
          + (", half under 50 defaults files, 1,000 in dependency chains" if args.orchestration else ""))
    print(f"cold start to ready : median {statistics.median(colds):5.2f} s  min {colds[0]:5.2f}  max {colds[-1]:5.2f} "
          f"over {len(colds)} starts (target < 2 s)")
    print(f"change to live      : p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {latencies[-1]:6.1f} ms "
          f"(targets p50 < 30, p99 < 100; log timestamps have 1 ms resolution)")
    print(f"resident memory     : {rss_ready:6.1f} MiB at ready, {rss_after:6.1f} MiB after the trials (target < 100)")
    print(f"restore from ledger : median {restore_secs:5.2f} s to ready over {len(restores)} starts, "
          f"{restore_rss:6.1f} MiB RSS (target < 2 s)")
    print(f"bare APScheduler    : {bare_secs:6.2f} s to add {args.schedules} interval jobs, {bare_rss:6.1f} MiB RSS")
    print(f"ratios              : start {statistics.median(colds) / bare_secs:.1f}x, "
          f"memory {rss_after / bare_rss:.2f}x of bare APScheduler")


if __name__ == "__main__":
    main()
