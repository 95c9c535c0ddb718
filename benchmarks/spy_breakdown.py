"""Where the daemon's GIL-holding samples go, from py-spy's collapsed stacks (`bench_firing.py
--profile py-spy`): each sample is put in the first category whose marker its stack holds.

Run: .venv/bin/python benchmarks/spy_breakdown.py benchmarks/.work/firing-launcher-500.txt [...]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (category, markers): the first category with a marker in the stack takes the sample.
CATEGORIES = [
    ("start the job: launcher request (daemon side)", ("launch (reconciler/kinds/launcher.py",)),
    ("start the job: Popen of setpriv + sh", ("_launch (reconciler/kinds/procs.py", "_popen (reconciler")),
    ("start the job: cgroup mkdir, limits", ("_spawn_remote", "_spawn (reconciler")),
    ("launcher's report reader", ("_serve (reconciler/kinds/launcher.py",)),
    ("ledger: claim", ("claim (reconciler/ledger",)),
    ("ledger: set_processes", ("set_processes",)),
    ("ledger: finish", ("finish (reconciler/ledger",)),
    ("ledger: other (group commit thread)", ("reconciler/ledger",)),
    ("end of run: close (cgroup read, rmdir, members)", ("close (reconciler/kinds/procs.py",)),
    ("supervising the run (poll loop)", ("_supervise",)),
    ("logging", ("log (reconciler/service/logs", "reconciler/service/log", "logging")),
    ("APScheduler timer thread", ("apscheduler",)),
    ("metrics", ("reconciler/service/metrics",)),
    ("the rest of a run in the runner (policy, ids, whereabouts)", ("reconciler/engine/runner.py", "reconciler/core")),
    ("worker pool hand-off", ("concurrent/futures", "threading.py")),
]


def breakdown(path: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        counts[next((c for c, marks in CATEGORIES if any(m in stack for m in marks)), "other")] += int(n)
    return counts, total


def main() -> None:
    for name in sys.argv[1:]:
        counts, total = breakdown(Path(name))
        print(f"{name}: {total} samples")
        for cat, n in counts.most_common():
            print(f"  {n / total:6.1%}  {cat}")


if __name__ == "__main__":
    main()
