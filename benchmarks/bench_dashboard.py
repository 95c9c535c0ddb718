"""The overview page with 10,000 schedules and 100,000 runs, measured at the server.

Run: .venv/bin/python benchmarks/bench_dashboard.py
Targets (issue 19): the overview's server time under 100 ms, its first render in Chromium under
1 s. The page is static; what it waits for is /api/v1/overview, the first page of
/api/v1/schedules and that page's run strips (/api/v1/strips), so all are timed. Also timed: the
strips' query against its peer (a window function over every run of the page's schedules), in
the same process, alternating; the timeline; and the page in Chromium, when it is installed.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
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
        with urllib.request.urlopen(url + "/api/v1/schedules?limit=50&sort=name", timeout=30) as r:
            page = [s["name"] for s in json.load(r)["items"]]
        strips = "/api/v1/strips?" + urllib.parse.urlencode([("name", n) for n in page])
        results = {}
        for path in ("/", "/api/v1/overview", "/api/v1/schedules?limit=50&sort=name",
                     "/api/v1/schedules?limit=50&sort=next", "/api/v1/schedules?limit=50&q=job-0&last_status=failed",
                     strips, "/api/v1/schedules/job-00042/trends",
                     "/api/v1/timeline?from=2030-01-01T00:00:00Z&hours=24"):
            samples = []
            for _ in range(30):
                t = time.perf_counter()
                with urllib.request.urlopen(url + path, timeout=30) as r:
                    r.read()
                samples.append((time.perf_counter() - t) * 1000)
            results[path] = samples
        render = browser(url)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    print("10,000 schedules, 100,000 runs; 30 requests each over loopback (includes the HTTP round trip)")
    for path, samples in results.items():
        shown = "/api/v1/strips?name=... (the first page's 50)" if path == strips else path
        print(f"  {shown:<58} median {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")
    total = [a + b + c + d for a, b, c, d in zip(results["/"], results["/api/v1/overview"],
                                                 results["/api/v1/schedules?limit=50&sort=name"], results[strips],
                                                 strict=True)]
    print(f"overview page (HTML + overview + first page of schedules + its strips): median "
          f"{statistics.median(total):.1f} ms, max {max(total):.1f} ms   (target < 100 ms)")
    peers(ledger, page)
    if render:
        for what, samples in render.items():
            print(f"Chromium, {what}: median {statistics.median(samples):.0f} ms, max {max(samples):.0f} ms "
                  "(from navigation start; target < 1000 ms)")


def peers(path: Path, page: list[str], rounds: int = 30) -> None:
    """The strips' query (each schedule's N newest, bounded per schedule) against its peer, a window
    function over every run of the page's schedules, both building the same records, alternating:
    on the benchmark's ledger (about 10 runs a schedule) and on one where each has 2,000."""
    from reconciler.ledger.sqlite import _RUN_COLUMNS, _record

    deep = path.with_name("deep.db")
    deep.unlink(missing_ok=True)
    SqliteLedger(deep).close()
    t0 = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
    with sqlite3.connect(deep) as db:
        db.executemany("INSERT INTO runs (schedule, slot, attempt, trigger, status, revision, started_at, finished_at)"
                       " VALUES (?, ?, 1, 'schedule', 'succeeded', 'r', ?, ?)",
                       [(f"s{i % 50}", t0 + i * 1_000_000, t0 + i * 1_000_000, t0 + i * 1_000_000 + 5)
                        for i in range(100_000)])
    for label, ledger_path, names in (("~10 runs each", path, page), ("2,000 runs each", deep,
                                                                     [f"s{i}" for i in range(50)])):
        led = SqliteLedger(ledger_path)
        marks = ",".join("?" * len(names))
        window = (f"SELECT {_RUN_COLUMNS} FROM (SELECT {_RUN_COLUMNS}, row_number() OVER (PARTITION BY schedule "
                  f"ORDER BY id DESC) AS n FROM runs WHERE schedule IN ({marks})) WHERE n <= 40")
        ours: list[float] = []
        theirs: list[float] = []
        with sqlite3.connect(ledger_path) as db:
            for _ in range(rounds):
                t = time.perf_counter()
                led.recent_runs(names, 40)
                ours.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                found: dict[str, list[object]] = {}
                for row in db.execute(window, names).fetchall():
                    found.setdefault(row[1], []).append(_record(row))
                theirs.append((time.perf_counter() - t) * 1000)
        led.close()
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"strips of 50 schedules with {label}, in-process: recent_runs median {a:.2f} ms, "
              f"window function median {b:.2f} ms, window/ours {b / a:.2f}x")


def browser(url: str, rounds: int = 10) -> dict[str, list[float]] | None:
    """Time to first render in Chromium: navigation start to the schedules table filled, and to the
    strips drawn."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("Chromium is not installed: no render time")
        return None
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"schedules table rendered": [], "run strips drawn": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        for _ in range(rounds):
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/")
            page.wait_for_selector("body[data-loaded=true]")
            out["schedules table rendered"].append(page.evaluate("performance.now()"))
            page.wait_for_selector("#schedules[data-strips=loaded]")
            out["run strips drawn"].append(page.evaluate("performance.now()"))
            page.close()
        b.close()
    return out


if __name__ == "__main__":
    main()
