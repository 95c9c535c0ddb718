"""Cost of one next-fire-time computation, over 10,000 cron expressions, beside cronsim.

Run: .venv/bin/python benchmarks/bench_cron.py [--count 10000]
Target (issue 3): under 50 microseconds per call after construction.
Both libraries get the same expressions and start instants. Ours runs in the schedule's
zone (half of them DST zones); cronsim is given the same zone-aware datetimes.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reconciler.core import cron

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


def expressions(n: int, rng: random.Random) -> list[str]:
    common = ["0 2 * * *", "*/15 * * * *", "0 8-23 * * mon-fri", "0 9,14,19 * * sat,sun", "30 3 1 * *",
              "0 * * * *", "5 4 * * 0", "0 */6 * * *", "15 10 1-7 * *", "*/5 9-17 * * 1-5"]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(rng.choice(common))
        else:
            m = rng.choice(["*", str(rng.randrange(60)), f"*/{rng.choice([5, 10, 15, 20, 30])}",
                            f"{rng.randrange(30)}-{rng.randrange(30, 60)}"])
            h = rng.choice(["*", str(rng.randrange(24)), f"{rng.randrange(12)}-{rng.randrange(12, 24)}"])
            dom = rng.choice(["*", "*", str(rng.randrange(1, 29)), "1-15"])
            mon = rng.choice(["*", "*", "*", "1-6", str(rng.randrange(1, 13))])
            dow = rng.choice(["*", "*", "1-5", "0,6", str(rng.randrange(7))])
            out.append(f"{m} {h} {dom} {mon} {dow}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10_000)
    args = ap.parse_args()
    rng = random.Random(3)
    exprs = expressions(args.count, rng)
    zones = [ZoneInfo(rng.choice(ZONES)) for _ in exprs]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(seconds=rng.randrange(365 * 86400)) for _ in exprs]

    t = time.perf_counter()
    parsed = [cron.parse(e) for e in exprs]
    construct = (time.perf_counter() - t) / len(exprs)

    t = time.perf_counter()
    for p, z, s in zip(parsed, zones, starts, strict=True):
        p.next_after(s, z)
    ours = (time.perf_counter() - t) / len(exprs)

    # 10 consecutive fire times per expression: the daemon's steady state.
    t = time.perf_counter()
    for p, z, s in zip(parsed, zones, starts, strict=True):
        nxt = s
        for _ in range(10):
            nxt = p.next_after(nxt, z) or nxt
    ours_seq = (time.perf_counter() - t) / (len(exprs) * 10)

    print(f"expressions: {len(exprs)}, zones: {', '.join(ZONES)}")
    print(f"ours     construct {construct * 1e6:6.1f} us   next (random start) {ours * 1e6:6.1f} us/call   "
          f"next (consecutive) {ours_seq * 1e6:6.1f} us/call   (target < 50)")
    try:
        from cronsim import CronSim
    except ImportError:
        print("cronsim not installed: pip install cronsim to compare")
        return
    local_starts = [s.astimezone(z) for s, z in zip(starts, zones, strict=True)]
    t = time.perf_counter()
    sims = [CronSim(e, s) for e, s in zip(exprs, local_starts, strict=True)]
    c_construct = (time.perf_counter() - t) / len(exprs)
    t = time.perf_counter()
    for sim in sims:
        next(sim)
    c_next = (time.perf_counter() - t) / len(exprs)
    print(f"cronsim  construct {c_construct * 1e6:6.1f} us   next (random start) {c_next * 1e6:6.1f} us/call")
    print(f"ratio ours/cronsim for next: {ours / c_next:.2f}")


if __name__ == "__main__":
    main()
