"""`reconciler init`: a new schedules repository, the same as examples/schedules-repo/."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from reconciler.commands.init import scaffold
from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLE = ROOT / "examples" / "schedules-repo"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_scaffold_is_the_example_repository_file_for_file() -> None:
    assert set(scaffold()) == {".github/workflows/schedules.yml", ".pre-commit-config.yaml", "README.md",
                               "schedules/reports.yaml"}
    assert scaffold() == tree(EXAMPLE)


def test_init_writes_a_repository_whose_schedules_validate(reconciler: Run, tmp_path: Path) -> None:
    target = tmp_path / "new" / "repo"  # parents are made too
    r = reconciler("init", str(target))
    assert r.returncode == 0, r.stderr
    assert tree(target) == tree(EXAMPLE)
    assert f"created {target}/.github/workflows/schedules.yml" in r.stdout.splitlines()
    in_dir = reconciler("validate", cwd=target)  # the default path, schedules/, is where init put them
    assert in_dir.returncode == 0, in_dir.stdout + in_dir.stderr
    assert in_dir.stdout.strip() == "1 file, 2 schedules: valid"


def test_init_defaults_to_the_current_directory(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path) == tree(EXAMPLE)


def test_init_refuses_to_overwrite_a_file_and_then_writes_nothing(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("our own readme\n")
    r = reconciler("init", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr == (f"reconciler: {tmp_path}: README.md already exist; nothing was written "
                        "(--force overwrites them)\n")
    assert tree(tmp_path) == {"README.md": b"our own readme\n"}


def test_init_with_force_overwrites_and_says_so(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("our own readme\n")
    r = reconciler("init", "--force", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"overwrote {tmp_path}/README.md" in r.stdout.splitlines()
    assert tree(tmp_path) == tree(EXAMPLE)


def test_init_with_force_replaces_a_link_and_never_writes_through_it(reconciler: Run, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("not to be touched\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").symlink_to(elsewhere)
    assert reconciler("init", "--force", str(repo)).returncode == 0
    assert not (repo / "README.md").is_symlink()
    assert elsewhere.read_text() == "not to be touched\n"


def test_init_into_a_file_is_a_usage_error(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    r = reconciler("init", str(tmp_path / "f"))
    assert r.returncode == 64
    assert r.stderr == f"reconciler: {tmp_path}/f: not a directory\n"
