"""`reconciler schema [--output FILE]`: the schema printed, or written for offline editors."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

from reconciler.commands.schema import schema
from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]
COMMITTED = (ROOT / "schema" / "schedule.schema.json").read_text()


def test_schema_prints_the_committed_schema() -> None:
    out = io.StringIO()
    assert schema(out=out) == 0
    assert out.getvalue() == COMMITTED


def test_schema_output_writes_a_copy_to_commit_creating_its_directory(reconciler: Run, tmp_path: Path) -> None:
    target = tmp_path / "repo" / ".schemas" / "schedule.schema.json"
    r = reconciler("schema", "--output", str(target))
    assert r.returncode == 0, r.stderr
    assert target.read_text() == COMMITTED
    assert r.stdout == f"wrote {target}\n"


def test_schema_output_replaces_an_older_copy(reconciler: Run, tmp_path: Path) -> None:
    target = tmp_path / "schedule.schema.json"
    target.write_text('{"old": true}\n')
    assert reconciler("schema", "-o", str(target)).returncode == 0
    assert target.read_text() == COMMITTED


def test_schema_output_to_a_directory_fails_with_the_reason(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("schema", "--output", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.startswith(f"reconciler: {tmp_path}: cannot write the schema: ")
    assert r.stdout == ""
