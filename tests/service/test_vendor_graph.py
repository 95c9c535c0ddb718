"""The graph layout library shipped in the package is the pinned npm package's, with its licences."""

from __future__ import annotations

import fnmatch
import json
import tomllib

import pytest

from tests.conftest import ROOT

VENDOR = ROOT / "reconciler" / "data" / "vendor"
TOOLS = ROOT / "tools" / "vendor"
MODULES = TOOLS / "node_modules"
# dagre.min.js bundles @dagrejs/graphlib: both licences ship.
SHIPPED = {"dagre.min.js": "@dagrejs/dagre/dist/dagre.min.js", "dagre.LICENSE": "@dagrejs/dagre/LICENSE",
           "graphlib.LICENSE": "@dagrejs/graphlib/LICENSE"}


def test_the_copy_script_copies_the_layout_library_and_both_licences() -> None:
    import runpy

    names = {name: source for source, name in runpy.run_path(str(TOOLS / "copy.py"))["FILES"]}
    assert {n: names.get(n) for n in SHIPPED} == SHIPPED
    for name in SHIPPED:
        assert (VENDOR / name).is_file(), name
    for licence in ("dagre.LICENSE", "graphlib.LICENSE"):
        assert "Permission is hereby granted, free of charge" in (VENDOR / licence).read_text()


def test_the_package_data_globs_ship_every_vendored_graph_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["reconciler.data"]
    for name in [*SHIPPED, "graph.js", "graph.css"]:
        path = name if name.startswith("graph.") else f"vendor/{name}"
        assert any(fnmatch.fnmatch(path, g) for g in globs), name


def test_the_lock_pins_the_version_the_manifest_names() -> None:
    manifest = json.loads((TOOLS / "package.json").read_text())
    lock = json.loads((TOOLS / "package-lock.json").read_text())
    wanted = manifest["dependencies"]["@dagrejs/dagre"]
    assert lock["packages"]["node_modules/@dagrejs/dagre"]["version"] == wanted
    assert lock["packages"]["node_modules/@dagrejs/dagre"]["integrity"].startswith("sha512-")


@pytest.mark.skipif(not MODULES.is_dir(), reason="npm ci --prefix tools/vendor has not run")
def test_the_committed_copies_are_byte_equal_to_the_npm_package() -> None:
    for name, source in SHIPPED.items():
        assert (VENDOR / name).read_bytes() == (MODULES / source).read_bytes(), (
            f"{name} differs from node_modules/{source}: run python tools/vendor/copy.py")
    installed = json.loads((MODULES / "@dagrejs" / "dagre" / "package.json").read_text())["version"]
    assert installed == json.loads((TOOLS / "package.json").read_text())["dependencies"]["@dagrejs/dagre"]


def test_the_vendored_layout_needs_nothing_the_strict_csp_forbids() -> None:
    script = (VENDOR / "dagre.min.js").read_text()
    # No eval-like code (script-src 'self' has no 'unsafe-eval'), no style attribute or sheet
    # (style-src 'self'), no DOM at all: it only computes positions, graph.js draws.
    for forbidden in ("eval(", "Function(", "setAttribute(\"style\"", "cssText", "document.", "innerHTML",
                      "import(", "fetch(", "XMLHttpRequest"):
        assert forbidden not in script, forbidden


def test_the_graph_script_never_parses_server_values_as_html() -> None:
    script = (ROOT / "reconciler" / "data" / "graph.js").read_text()
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in script, forbidden
