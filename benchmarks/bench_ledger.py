"""Ledger throughput: claims + finishes per second on SQLite and on PostgreSQL, in the same run.

Run: .venv/bin/python benchmarks/bench_ledger.py [--runs 3000] [--repeat 5] [--threads 1,8]
Each trial opens a fresh ledger of each backend and completes `--runs` runs as the runner does
(claim, then finish with keep=100) from N threads. The backends alternate, and which goes first
alternates too, so that neither always gets the warmer disk; the medians and the ratio are printed.
PostgreSQL is a throwaway cluster of Debian's `postgresql` (tests/pgserver.py) with its durable
defaults (fsync, synchronous_commit on), on the same disk as the SQLite file (synchronous=FULL).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pgserver starts the server
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK

from reconciler.core.policy import Cause, RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from tests.pgserver import PgServer, find_binaries

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def completed_per_second(ledger: Ledger, runs: int, threads: int) -> float:
    def work(k: int) -> None:
        for i in range(k, runs, threads):
            slot = T0 + timedelta(seconds=i)
            run_id = ledger.claim(f"s{i % 100}", slot, attempt=1, cause=Cause.SCHEDULE, revision="r",
                                  started_at=slot, owner="bench", counted=True)
            assert run_id is not None
            ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, slot, exit_code=0, output=""), keep=100)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return runs / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,8")
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
        print(f"PostgreSQL {row[0] if row else '?'} (fsync on), SQLite synchronous=FULL; "
              f"{args.runs} runs per trial, {args.repeat} trials, alternating")
        for threads in (int(t) for t in args.threads.split(",")):
            rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
            for trial in range(args.repeat):
                order = ["sqlite", "postgres"] if trial % 2 == 0 else ["postgres", "sqlite"]
                for backend in order:
                    rates[backend].append(trial_of(backend, server, args.runs, threads, trial))
            med = {b: statistics.median(r) for b, r in rates.items()}
            for b, r in rates.items():
                print(f"{threads} thread(s) {b:8s}: median {med[b]:7.0f} runs/s  "
                      f"(trials: {', '.join(f'{x:.0f}' for x in r)})")
            print(f"{threads} thread(s) postgres/sqlite: {med['postgres'] / med['sqlite']:.2f}x")
    finally:
        server.stop()
    return 0


def trial_of(backend: str, server: PgServer, runs: int, threads: int, trial: int) -> float:
    cleanup: Callable[[], None]
    if backend == "sqlite":
        path = WORK / f"bench-ledger-{trial}.db"
        for p in WORK.glob(f"{path.name}*"):
            p.unlink()
        location = str(path)

        def cleanup() -> None:
            for p in WORK.glob(f"{path.name}*"):
                p.unlink()
    else:
        name = server.create_database()
        location = server.url(name)

        def cleanup() -> None:
            server.drop_database(name)
    ledger = open_ledger(location)
    try:
        return completed_per_second(ledger, runs, threads)
    finally:
        ledger.close()
        cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
