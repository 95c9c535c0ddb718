"""The charting library shipped in the package is the pinned npm package's, with its licence."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

VENDOR = ROOT / "reconciler" / "data" / "vendor"
MODULES = ROOT / "tools" / "vendor" / "node_modules"
SHIPPED = {"uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js", "uPlot.min.css": "uplot/dist/uPlot.min.css",
           "uPlot.LICENSE": "uplot/LICENSE", "dagre.min.js": "@dagrejs/dagre/dist/dagre.min.js",
           "dagre.LICENSE": "@dagrejs/dagre/LICENSE", "graphlib.LICENSE": "@dagrejs/graphlib/LICENSE"}


def test_the_shipped_files_are_exactly_those_the_copy_script_writes() -> None:
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted(SHIPPED)
    assert "MIT License" in (VENDOR / "uPlot.LICENSE").read_text()


def test_the_package_data_globs_ship_every_vendored_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["reconciler.data"]
    for name in SHIPPED:
        assert any(fnmatch.fnmatch(f"vendor/{name}", g) for g in globs), name


def test_the_lock_pins_the_version_the_manifest_names() -> None:
    manifest = json.loads((ROOT / "tools" / "vendor" / "package.json").read_text())
    lock = json.loads((ROOT / "tools" / "vendor" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/uplot"]["version"] == manifest["dependencies"]["uplot"]


@pytest.mark.skipif(not MODULES.is_dir(), reason="npm ci --prefix tools/vendor has not run")
def test_the_committed_copies_are_byte_equal_to_the_npm_package() -> None:
    for name, source in SHIPPED.items():
        assert (VENDOR / name).read_bytes() == (MODULES / source).read_bytes(), (
            f"{name} differs from node_modules/{source}: run python tools/vendor/copy.py")
    installed = json.loads((MODULES / "uplot" / "package.json").read_text())["version"]
    assert installed == json.loads((ROOT / "tools" / "vendor" / "package.json").read_text())["dependencies"]["uplot"]


def test_the_vendored_script_needs_nothing_the_strict_csp_forbids() -> None:
    script = (VENDOR / "uPlot.iife.min.js").read_text()
    # No eval-like code (script-src 'self' has no 'unsafe-eval'), no style attribute (style-src 'self').
    for forbidden in ("eval(", "new Function", "setAttribute(\"style\"", "cssText", "sourceMappingURL"):
        assert forbidden not in script, forbidden
    assert Path(VENDOR / "uPlot.min.css").read_text().count("url(") == 0  # loads nothing
