"""Several replicas on one ledger, PostgreSQL beside SQLite in the same run, alternating.

    .venv/bin/python benchmarks/bench_replicas.py [throughput] [lateness] [failover] [--repeat 3]

- throughput: completed runs per second (claim + finish) by 1 and by 3 replica processes, every
  replica racing for every slot (worst case: each slot is N inserts, one wins), with the spread of
  the runs over the replicas and what the losers cost; `postgres-async` is PostgreSQL with
  `synchronous_commit = off` (not a setting we recommend: it shows what the commit flushes cost);
- profile: where one PostgreSQL replica's claim threads spend their time (py-spy, pip-installable);
- lateness: 3 real `reconciler run` replicas with 10,000 schedules loaded and 20 `every: 1s`
  probes; how late each probe run started (its `run.start` log line minus its slot), p50/p99;
  and the spread of those runs over the replicas;
- failover: 3 real replicas with default leases; SIGKILL the one that owns a long run; seconds
  until that run is `abandoned` in the ledger (target: lease + heartbeat).

PostgreSQL is a throwaway cluster of Debian's `postgresql` (tests/pgserver.py) with fsync on;
SQLite keeps synchronous=FULL. The machine is shared: figures are noisy; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pgserver starts the server

from common import WORK, make_tree

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Outcome
from tests.pgserver import PgServer, find_binaries

EXE = str(Path(sys.executable).with_name("reconciler"))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULES = 100  # slots are spread over this many schedule names
THREADS = 8  # claim threads per replica (as many as a replica's PostgreSQL pool holds)


# ---- throughput: replica processes racing on the ledger API -----------------------------------------

def replica_main(location: str, slots: int, start_at: float, name: str) -> None:
    """One replica process: register, heartbeat, and race for every slot with THREADS threads."""
    led = open_ledger(location)
    lease = timedelta(seconds=20)
    led.register_replica(name, host="bench", pid=os.getpid(), version="bench", revision="r", lease=lease)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(5):
            led.heartbeat(name, lease=lease)

    threading.Thread(target=beat, daemon=True).start()
    lock = threading.Lock()
    nxt = [0]
    won, lost = [0], [0]

    def work() -> None:
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= slots:
                return
            slot = T0 + timedelta(seconds=k // SCHEDULES)
            run_id = led.claim(f"s-{k % SCHEDULES}", slot, attempt=1, cause=Cause.SCHEDULE, revision="r",
                               started_at=slot, owner=name, lease=lease)
            if run_id is None:
                with lock:
                    lost[0] += 1
                continue
            led.finish(run_id, Outcome(RunStatus.SUCCEEDED, slot, exit_code=0, output="ok\n"), keep=100)
            with lock:
                won[0] += 1

    while time.time() < start_at:
        time.sleep(0.001)
    t = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    stop.set()
    led.close()
    print(json.dumps({"won": won[0], "lost": lost[0], "elapsed": elapsed, "end": time.time()}))


def throughput_trial(location: str, replicas: int, slots: int,
                     wrap: list[str] | None = None) -> tuple[float, list[int], int]:
    """Completed runs per second over all replicas (first start to last end), the runs each won,
    and the claims lost to a faster replica. `wrap` prefixes the first replica's command (a profiler)."""
    start_at = time.time() + 2.0  # every process has opened the ledger by then
    procs = [subprocess.Popen([*(wrap if wrap and i == 0 else []), sys.executable, __file__, "_replica", location,
                               str(slots), str(start_at), f"r{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(replicas)]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"a replica failed ({p.returncode})")
        results.append(json.loads(next(x for x in reversed(out.splitlines()) if x.startswith("{"))))
    won = [r["won"] for r in results]
    end = max(r["end"] for r in results)
    assert sum(won) == slots, (won, slots)  # every slot ran exactly once
    return slots / (end - start_at), won, sum(r["lost"] for r in results)


def throughput(server: PgServer, repeat: int, slots: int) -> None:
    print(f"\n== completed runs per second: {slots} slots per trial, {THREADS} threads per replica, every replica "
          f"racing for every slot, claim + finish (keep=100); {repeat} trials, backends alternating")
    for replicas in (1, 3):
        backends = ["sqlite", "postgres", "postgres-async"]
        rates: dict[str, list[float]] = {b: [] for b in backends}
        spread: dict[str, list[list[int]]] = {b: [] for b in backends}
        losses: dict[str, list[int]] = {b: [] for b in backends}
        for trial in range(repeat):
            for backend in (backends if trial % 2 == 0 else backends[::-1]):
                location, cleanup = fresh(server, backend, f"tp-{replicas}-{trial}")
                try:
                    rate, won, lost = throughput_trial(location, replicas, slots)
                finally:
                    cleanup()
                rates[backend].append(rate)
                spread[backend].append(won)
                losses[backend].append(lost)
        med = {b: statistics.median(r) for b, r in rates.items()}
        for b in backends:
            shares = [f"{min(w) / sum(w) * 100:.0f}-{max(w) / sum(w) * 100:.0f}%" for w in spread[b]]
            print(f"{replicas} replica(s) {b:14s}: median {med[b]:6.0f} runs/s (trials: "
                  f"{', '.join(f'{x:.0f}' for x in rates[b])}); claims lost per run: "
                  f"{statistics.median(losses[b]) / slots:.2f}; share of runs per replica (min-max): "
                  f"{', '.join(shares)}")
        print(f"{replicas} replica(s) postgres/sqlite: {med['postgres'] / med['sqlite']:.2f}x")


def profile(server: PgServer, slots: int) -> None:
    """Where one PostgreSQL replica's time goes: py-spy (pip install py-spy), idle frames included,
    so that waiting for the server shows as such."""
    out = WORK / "replica-profile.txt"
    location, cleanup = fresh(server, "postgres", "profile")
    try:
        rate, _, _ = throughput_trial(location, 1, slots, wrap=["py-spy", "record", "--idle", "--format", "raw",
                                                               "-r", "200", "-o", str(out), "--"])
    finally:
        cleanup()
    own: dict[str, int] = {}
    inside: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not any("work (" in f for f in frames):
            continue  # only the claim threads, not the heartbeat nor the start-up
        n = int(count)
        total += n
        leaf = frames[-1].split(" (")[0]
        own[leaf] = own.get(leaf, 0) + n
        for key in {f.split(" (")[0].split(".")[-1] for f in frames}:
            inside[key] = inside.get(key, 0) + n
    print(f"\n== profile of one PostgreSQL replica ({rate:.0f} runs/s under py-spy), claim threads' samples:")
    print("  inclusive: " + ", ".join(f"{k} {inside.get(k, 0) / total * 100:.0f}%"
                                      for k in ("claim", "finish", "execute", "wait", "_exec_command",
                                                "connection")))
    print("  own time (top 12):")
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {n / total * 100:5.1f}%  {name}")


def fresh(server: PgServer, backend: str, tag: str) -> tuple[str, Callable[[], None]]:
    if backend.startswith("postgres"):
        name = server.create_database()
        if backend == "postgres-async":  # no wait for the WAL flush at commit: what the fsyncs cost
            with server.admin() as db:
                db.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        return server.url(name), lambda: server.drop_database(name)
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"bench-replicas-{tag}.db"
    for p in WORK.glob(f"{path.name}*"):
        p.unlink()

    def cleanup() -> None:
        for p in WORK.glob(f"{path.name}*"):
            p.unlink()

    return str(path), cleanup


# ---- real daemons -------------------------------------------------------------------------------------

class Replica:
    def __init__(self, directory: Path, location: str, log: Path, *extra: str) -> None:
        self.log = log
        with log.open("wb") as f:
            self.proc = subprocess.Popen(
                [EXE, "run", "--dir", str(directory), "--ledger", location, "--log-format", "json",
                 "--rescan", "60s", "--listen", "127.0.0.1:0", *extra],
                stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def events(self, kind: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if e.get("event") == kind:
                out.append(e)
        return out

    def wait_started(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.events("reconciler.started"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a replica did not start: {self.log}")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=60)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lateness_trial(location: str, tree: Path, work: Path, seconds: float,
                   warmup: float) -> tuple[list[float], list[int]]:
    reps = [Replica(tree, location, work / f"late-{i}.log") for i in range(3)]
    try:
        for r in reps:
            r.wait_started()
        # The first seconds after the start are the replicas' start-up (recording a revision of
        # 10,000 specs, catch-up): measured apart, as a figure of its own.
        since = datetime.now(UTC) + timedelta(seconds=warmup)
        time.sleep(warmup + seconds)
    finally:
        for r in reps:
            r.stop()
    late, per = [], []
    for r in reps:
        starts = [e for e in r.events("run.start") if e["schedule"].startswith("probe-") and _ts(e["slot"]) >= since]
        late += [(_ts(e["ts"]) - _ts(e["slot"])).total_seconds() * 1000 for e in starts]
        per.append(len(starts))
    return late, per


def lateness(server: PgServer, repeat: int, seconds: float, warmup: float) -> None:
    tree = WORK / "replicas-tree"
    make_tree(tree, 10_000, start="2030-01-01T00:00:00Z")  # loaded and armed, none due during the trial
    for i in range(20):
        (tree / f"probe-{i:02d}.yaml").write_text(
            f"name: probe-{i:02d}\nschedule: {{every: 1s}}\npolicy: {{concurrency: allow}}\n"
            "run: {command: [/bin/true]}\n")
    print(f"\n== fire lateness: 3 replicas, 10,020 schedules loaded, 20 every 1s; {seconds:.0f} s per trial, "
          f"{repeat} trials, after {warmup:.0f} s of warm-up; lateness = run.start minus slot (claim included)")
    results: dict[str, list[tuple[float, float]]] = {"sqlite": [], "postgres": []}
    for trial in range(repeat):
        for backend in (["sqlite", "postgres"] if trial % 2 == 0 else ["postgres", "sqlite"]):
            location, cleanup = fresh(server, backend, f"late-{trial}")
            try:
                late, per = lateness_trial(location, tree, WORK, seconds, warmup)
            finally:
                cleanup()
            late.sort()
            p50, p99 = late[len(late) // 2], late[min(len(late) - 1, int(len(late) * 0.99))]
            results[backend].append((p50, p99))
            print(f"  trial {trial} {backend:8s}: {len(late)} runs, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                  f"max {late[-1]:.1f} ms; runs per replica {per}")
    for b in ("sqlite", "postgres"):
        print(f"{b:8s}: median p50 {statistics.median(x[0] for x in results[b]):.1f} ms, "
              f"median p99 {statistics.median(x[1] for x in results[b]):.1f} ms")


def failover_trial(location: str, work: Path, heartbeat: str, lease: str) -> float:
    d = work / "failover"
    d.mkdir(parents=True, exist_ok=True)
    (d / "long.yaml").write_text("name: long\nschedule: {every: 2s}\npolicy: {concurrency: forbid}\n"
                                 "run: {command: [/bin/sleep, '3600']}\n")
    reps = [Replica(d, location, work / f"fail-{i}.log", "--heartbeat", heartbeat, "--lease", lease)
            for i in range(3)]
    led = open_ledger(location)
    try:
        for r in reps:
            r.wait_started()
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            for r in reps:
                if r.events("run.start"):
                    victim = r
            time.sleep(0.05)
        if victim is None:
            raise RuntimeError("no replica started the run")
        run_id = victim.events("run.start")[0]["run_id"]
        time.sleep(1.0)
        killed = time.monotonic()
        victim.stop(signal.SIGKILL)
        while time.monotonic() - killed < 120:
            rec = led.run(run_id)
            if rec is not None and rec.status == RunStatus.ABANDONED:
                return time.monotonic() - killed
            time.sleep(0.05)
        raise RuntimeError("the run was not abandoned within 120 s")
    finally:
        led.close()
        for r in reps:
            r.stop()


def failover(server: PgServer, repeat: int, heartbeat: str, lease: str) -> None:
    print(f"\n== failover: SIGKILL the replica running a run, until it is `abandoned`; heartbeat {heartbeat}, "
          f"lease {lease}; {repeat} trials")
    times: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for trial in range(repeat):
        for backend in (["sqlite", "postgres"] if trial % 2 == 0 else ["postgres", "sqlite"]):
            location, cleanup = fresh(server, backend, f"fail-{trial}")
            try:
                times[backend].append(failover_trial(location, WORK, heartbeat, lease))
            finally:
                cleanup()
    for b in ("sqlite", "postgres"):
        print(f"{b:8s}: median {statistics.median(times[b]):.1f} s (trials: "
              f"{', '.join(f'{x:.1f}' for x in times[b])})")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_replica":
        replica_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="*", default=["throughput", "profile", "lateness", "failover"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slots", type=int, default=6000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10, help="seconds after the start not measured (lateness)")
    ap.add_argument("--heartbeat", default="5s")
    ap.add_argument("--lease", default="20s")
    args = ap.parse_args()
    binaries = find_binaries()
    if binaries is None:
        print("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)", file=sys.stderr)
        return 1
    WORK.mkdir(parents=True, exist_ok=True)
    server = PgServer(binaries, fsync=True).start()
    try:
        with server.admin() as db:
            row = db.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {row[0] if row else '?'} (fsync on), SQLite synchronous=FULL, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        if "throughput" in args.parts:
            throughput(server, args.repeat, args.slots)
        if "profile" in args.parts:
            profile(server, args.slots)
        if "lateness" in args.parts:
            lateness(server, args.repeat, args.seconds, args.warmup)
        if "failover" in args.parts:
            failover(server, args.repeat, args.heartbeat, args.lease)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
