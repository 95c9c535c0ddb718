"""The overview page with 10,000 schedules and 100,000 runs, measured at the server.

Run: .venv/bin/python benchmarks/bench_dashboard.py
Target (issue 6): the overview answers in under 200 ms server side. The page is static; what it
waits for is /api/v1/overview and the first page of /api/v1/schedules, so all three are timed.
"""

from __future__ import annotations

import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, WORK, make_tree

from reconciler.ledger.base import to_micros
from reconciler.ledger.sqlite import SqliteLedger


def main() -> None:
    base = WORK / "dashboard"
    shutil.rmtree(base, ignore_errors=True)
    sched = base / "schedules"
    make_tree(sched, 10_000, start="2030-01-01T00:00:00Z")
    ledger = base / "ledger.db"
    SqliteLedger(ledger).close()
    rng = random.Random(9)
    t0 = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
    with sqlite3.connect(ledger) as db:
        db.executemany(
            "INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, finished_at, exit_code,"
            " output) VALUES (?, ?, 1, 'schedule', ?, 'r', ?, ?, ?, 'ok')",
            [(f"job-{rng.randrange(10_000):05d}", t0 + i * 1_000_000, "failed" if i % 20 == 0 else "succeeded",
              t0 + i * 1_000_000, t0 + i * 1_000_000 + 500_000, 1 if i % 20 == 0 else 0) for i in range(100_000)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (base / "daemon.log").open("w")
    proc = subprocess.Popen([str(BIN), "run", "--dir", str(sched), "--ledger", str(ledger), "--listen",
                             f"127.0.0.1:{port}", "--log-format", "json"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "http.listening" not in (base / "daemon.log").read_text():
            if time.monotonic() > deadline:
                raise SystemExit("the daemon did not start")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        results = {}
        for path in ("/", "/api/v1/overview", "/api/v1/schedules?limit=50&sort=name",
                     "/api/v1/schedules?limit=50&sort=next", "/api/v1/schedules?limit=50&q=job-0&last_status=failed"):
            samples = []
            for _ in range(30):
                t = time.perf_counter()
                with urllib.request.urlopen(url + path, timeout=30) as r:
                    r.read()
                samples.append((time.perf_counter() - t) * 1000)
            results[path] = samples
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    print("10,000 schedules, 100,000 runs; 30 requests each over loopback (includes the HTTP round trip)")
    for path, samples in results.items():
        print(f"  {path:<58} median {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")
    page = [a + b + c for a, b, c in zip(results["/"], results["/api/v1/overview"],
                                            results["/api/v1/schedules?limit=50&sort=name"], strict=True)]
    print(f"overview page (HTML + overview + first page of schedules): median {statistics.median(page):.1f} ms, "
          f"max {max(page):.1f} ms   (target < 200 ms)")


if __name__ == "__main__":
    main()
