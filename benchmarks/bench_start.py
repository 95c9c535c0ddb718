"""The CPU one job start costs, all processes counted: the reconciler's, the launcher's, and the
job's (its chain of execs and /bin/true itself), with and without the resident launcher, in the
same run and alternating.

Run: .venv/bin/python benchmarks/bench_start.py [--runs 300] [--repeat 5] [--cgroup on|off]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from reconciler.kinds import launcher
from reconciler.kinds.command.run import _poll
from reconciler.kinds.procs import Supervisor


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def once(mode: str, runs: int, supervisor: Supervisor) -> tuple[float, float, float]:
    """ms of CPU a start: reconciler (self), launcher (itself and its jobs), jobs reaped here."""
    os.environ["RECONCILER_LAUNCHER"] = "on" if mode == "launcher" else "off"
    resident = launcher.resident()
    lpid = resident.pid if resident is not None and mode == "launcher" else None
    s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    l0 = _proc_cpu(lpid) if lpid else 0.0
    for _ in range(runs):
        procs = supervisor.spawn(["/bin/true"], cwd=None, env={"PATH": "/usr/bin:/bin"})
        deadline = time.monotonic() + 10
        while _poll(procs) is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        procs.close()
        if procs.proc.stdout is not None:
            procs.proc.stdout.close()
    s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    l1 = _proc_cpu(lpid) if lpid else 0.0
    me = (s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime) / runs * 1000
    kids = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / runs * 1000
    return me, (l1 - l0) / runs * 1000, kids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cgroup", choices=["on", "off"], default="on")
    args = ap.parse_args()
    supervisor = Supervisor.detect({"RECONCILER_CGROUP": args.cgroup})
    print(f"/bin/true started {args.runs} times a pass, {args.repeat} passes alternating, cgroup: "
          f"{supervisor.cgroup_parent is not None}; ms of CPU a start (median); the machine is shared")
    got: dict[str, list[tuple[float, float, float]]] = {"launcher": [], "setpriv": []}
    for _ in range(args.repeat):
        for mode in got:
            got[mode].append(once(mode, args.runs, supervisor))
    for mode, rows in got.items():
        me, la, kids = (statistics.median(r[i] for r in rows) for i in range(3))
        print(f"{mode:>9}: reconciler {me:.2f}  launcher (with its jobs) {la:.2f}  jobs reaped by the reconciler "
              f"{kids:.2f}  total {me + la + kids:.2f}")


if __name__ == "__main__":
    main()
