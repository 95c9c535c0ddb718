"""`reconciler validate` against check-jsonschema on the same 10,000 realistic files.

Run: .venv/bin/python benchmarks/bench_validate.py [--files 10000] [--repeat 5]
Target (issue 16): at least 20x faster than check-jsonschema, with lower peak memory. From 1,000
files on, `validate` forks a helper that shares the files: the peak RSS printed is the larger of the
two processes (ru_maxrss of the children), and the helper shares the parent's pages until it writes.
CPU seconds (user + sys of each command and its children) are printed too: on a shared machine the
wall-time ratio moves with the other tenants' load, the CPU ratio much less.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, WORK, make_tree


def measure(argv: list[str]) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MiB, exit code and CPU seconds (user + sys) of a command and its
    children, measured by a fresh wrapper process so every command's figures are its own."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(dt, u.ru_maxrss, r.returncode, u.ru_utime + u.ru_stime)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True)
    secs, rss_kib, code, cpu = out.stdout.split()
    return float(secs), int(rss_kib) / 1024, int(code), float(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tree = WORK / f"validate-{args.files}"
    files = make_tree(tree, args.files)
    checker = Path(sys.executable).with_name("check-jsonschema")
    schema = ROOT / "schema" / "schedule.schema.json"

    ours, peer = [], []
    for _ in range(args.repeat):  # alternating, so that both see the same phases of a shared machine
        ours.append(measure([str(BIN), "validate", str(tree)]))
        peer.append(measure([str(checker), "--schemafile", str(schema), *map(str, files)]))
        (o_t, _, _, o_c), (p_t, _, _, p_c) = ours[-1], peer[-1]
        print(f"  run: ours {o_t:.2f} s ({o_c:.2f} s CPU), peer {p_t:.2f} s ({p_c:.2f} s CPU), "
              f"ratio {p_t / o_t:.1f}x wall, {p_c / o_c:.1f}x CPU", flush=True)
    assert all(r[2] == 0 for r in ours), "reconciler validate rejected the benchmark files"
    assert all(r[2] == 0 for r in peer), "check-jsonschema rejected the benchmark files"

    o_t, o_m, o_c = (statistics.median(r[0] for r in ours), max(r[1] for r in ours),
                     statistics.median(r[3] for r in ours))
    p_t, p_m, p_c = (statistics.median(r[0] for r in peer), max(r[1] for r in peer),
                     statistics.median(r[3] for r in peer))
    ratios = sorted(p[0] / o[0] for o, p in zip(ours, peer, strict=True))
    n = args.files
    print(f"files: {n}  (median of {args.repeat} runs, whole process incl. start-up)")
    print(f"reconciler validate : {o_t:7.2f} s  {o_t / n * 1e3:6.3f} ms/file {o_c:5.2f} s CPU  peak RSS {o_m:6.1f} MiB")
    print(f"check-jsonschema    : {p_t:7.2f} s  {p_t / n * 1e3:6.3f} ms/file {p_c:5.2f} s CPU  peak RSS {p_m:6.1f} MiB")
    print(f"speed-up: {p_t / o_t:.1f}x wall (target >= 20x; runs {', '.join(f'{r:.1f}' for r in ratios)}), "
          f"{p_c / o_c:.1f}x CPU   memory: {o_m / p_m:.2f}x of peer (target < 1)")


if __name__ == "__main__":
    main()
