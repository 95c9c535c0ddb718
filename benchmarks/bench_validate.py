"""`reconciler validate` against check-jsonschema on the same 10,000 realistic files.

Run: .venv/bin/python benchmarks/bench_validate.py [--files 10000] [--repeat 3]
Target (issue 16): at least 20x faster than check-jsonschema, with lower peak memory. From 1,000
files on, `validate` forks a helper for half of them: the peak RSS printed is the larger of the two
processes (ru_maxrss of the children), and the helper shares the parent's pages until it writes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, WORK, make_tree, measure


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tree = WORK / f"validate-{args.files}"
    files = make_tree(tree, args.files)
    checker = Path(sys.executable).with_name("check-jsonschema")
    schema = ROOT / "schema" / "schedule.schema.json"

    ours, peer = [], []
    for _ in range(args.repeat):  # alternating, so that both see the same phases of a shared machine
        ours.append(measure([str(BIN), "validate", str(tree)]))
        peer.append(measure([str(checker), "--schemafile", str(schema), *map(str, files)]))
        print(f"  run: ours {ours[-1][0]:.2f} s, peer {peer[-1][0]:.2f} s, ratio {peer[-1][0] / ours[-1][0]:.1f}x",
              flush=True)
    assert all(code == 0 for *_, code in ours), "reconciler validate rejected the benchmark files"
    assert all(code == 0 for *_, code in peer), "check-jsonschema rejected the benchmark files"

    o_t, o_m = statistics.median(t for t, _, _ in ours), max(m for _, m, _ in ours)
    p_t, p_m = statistics.median(t for t, _, _ in peer), max(m for _, m, _ in peer)
    n = args.files
    print(f"files: {n}  (median of {args.repeat} runs, whole process incl. start-up)")
    print(f"reconciler validate : {o_t:7.2f} s  {o_t / n * 1e3:6.3f} ms/file  peak RSS {o_m:6.1f} MiB")
    print(f"check-jsonschema    : {p_t:7.2f} s  {p_t / n * 1e3:6.3f} ms/file  peak RSS {p_m:6.1f} MiB")
    print(f"speed-up: {p_t / o_t:.1f}x (target >= 20x)   memory: {o_m / p_m:.2f}x of peer (target < 1)")


if __name__ == "__main__":
    main()
