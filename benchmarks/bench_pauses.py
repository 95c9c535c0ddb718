"""The cost a pause check adds to each fired slot (issue 17): the runner asks the policy about every
slot with the schedule's pause, read through engine/pauses.py (the ledger's pauses, at most once a
second). Peers in the same run, alternating: no check (main's decide), the cached check, and a
ledger query per slot (what the cache avoids); for scale, one claim+finish of a run in the ledger.

Run: .venv/bin/python benchmarks/bench_pauses.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.core import policy
from reconciler.core.loader import Loader
from reconciler.core.policy import Cause, Pause, Request, RunStatus
from reconciler.engine.pauses import Pauses
from reconciler.ledger.base import Outcome
from reconciler.ledger.sqlite import SqliteLedger

N = 20_000
REPEATS = 7


def main() -> None:
    now = datetime.now(UTC)
    (s,) = Loader().load_bytes("a.yaml", b"name: a\nschedule: {every: 1s}\nrun: {command: [/bin/true]}\n",
                               now).schedules
    with tempfile.TemporaryDirectory() as tmp:
        ledger = SqliteLedger(Path(tmp) / "l.db")
        for i in range(100):  # 100 other schedules paused: the table a replica reads
            ledger.pause(Pause(f"other-{i}", "bench", now, "why", now + timedelta(hours=1)))
        cache = Pauses(ledger, clock=lambda: now, log=lambda *a, **k: None)
        request = Request(Cause.SCHEDULE, 1, now)

        def plain() -> None:
            policy.decide(s, request, now)

        def cached() -> None:
            policy.decide(s, request, now, pause=cache.get("a"))

        def queried() -> None:
            policy.decide(s, request, now, pause=ledger.pauses().get("a"))

        slot = [0]

        def claim() -> None:
            slot[0] += 1
            run_id = ledger.claim("a", now + timedelta(seconds=slot[0]), attempt=1, cause=Cause.SCHEDULE,
                                  revision="r", started_at=now)
            assert run_id is not None
            ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, now))

        peers = {"no pause check": (plain, N), "cached check": (cached, N), "query per slot": (queried, N // 20),
                 "claim+finish (scale)": (claim, N // 100)}
        times: dict[str, list[float]] = {k: [] for k in peers}
        for _ in range(REPEATS):
            for name, (fn, n) in peers.items():  # alternating, in the same run
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                times[name].append((time.perf_counter() - start) / n * 1e6)
        ledger.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, value in med.items():
        print(f"{name:22s} median {value:8.2f} µs/slot   (runs: {', '.join(f'{x:.2f}' for x in times[name])})")
    print(f"cached check / no check: {med['cached check'] / med['no pause check']:.2f}x; "
          f"added {med['cached check'] - med['no pause check']:.2f} µs/slot = "
          f"{(med['cached check'] - med['no pause check']) / med['claim+finish (scale)'] * 100:.2f}% of a claim+finish")
    print(f"query per slot / cached check: {med['query per slot'] / med['cached check']:.1f}x")


if __name__ == "__main__":
    main()
