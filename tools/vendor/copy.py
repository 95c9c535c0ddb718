"""Copy the dashboard's pinned libraries (charts: uPlot; graph layout: @dagrejs/dagre) from npm into the package.

Run after `npm ci --prefix tools/vendor`:  python tools/vendor/copy.py
The copies are committed, so `pip install` from a clean clone needs no npm;
tests/service/test_vendor.py checks they are byte-equal to the npm package's files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent.parent / "reconciler" / "data" / "vendor"
# (file in node_modules, name in reconciler/data/vendor/)
FILES = (("uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"), ("uplot/dist/uPlot.min.css", "uPlot.min.css"),
         ("uplot/LICENSE", "uPlot.LICENSE"),
         # dagre.min.js bundles @dagrejs/graphlib, so both licences ship.
         ("@dagrejs/dagre/dist/dagre.min.js", "dagre.min.js"), ("@dagrejs/dagre/LICENSE", "dagre.LICENSE"),
         ("@dagrejs/graphlib/LICENSE", "graphlib.LICENSE"))


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for source, name in FILES:
        shutil.copyfile(HERE / "node_modules" / source, TARGET / name)
        print(f"{source} -> {TARGET / name}")


if __name__ == "__main__":
    main()
