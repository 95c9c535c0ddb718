"""`validate` and `plan` with named pools (pools.yaml, issue 18)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]
JOB = "name: {name}\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\npolicy: {{pool: {pool}, priority: 5}}\n"


def test_validate_rejects_a_bad_pools_file_at_its_line_and_an_unknown_pool_at_the_schedules_line(
        reconciler: Run, tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    d.mkdir()
    (d / "pools.yaml").write_text("db-heavy: {size: 2}\nreports: {size: two}\n")
    (d / "jobs.yaml").write_text(JOB.format(name="ok", pool="db-heavy") + "---\n"
                                 + JOB.format(name="bad", pool="dbheavy"))
    r = reconciler("validate", str(d))
    assert r.returncode == 1
    assert "pools.yaml:2:" in r.stdout
    assert "pool 'reports': size must be an integer from 1 to 100000" in r.stdout
    assert "jobs.yaml:6:1: $.policy.pool: pool 'dbheavy' cannot be used" in r.stdout
    (d / "pools.yaml").write_text("db-heavy: {size: 2}\ndbheavy: {size: 1}\n")
    r = reconciler("validate", str(d))
    assert r.returncode == 0, r.stdout


def test_pools_yaml_is_not_read_as_a_schedule_file(reconciler: Run, tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    d.mkdir()
    (d / "pools.yaml").write_text("db-heavy: {size: 2}\n")
    (d / "job.yaml").write_text(JOB.format(name="job", pool="db-heavy"))
    r = reconciler("validate", str(d))
    assert r.returncode == 0, r.stdout
    assert "1 file, 1 schedule" in r.stdout


def test_plan_against_a_base_shows_a_pools_size_change(reconciler: Run, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    d = repo / "schedules"
    d.mkdir()
    (d / "pools.yaml").write_text("db-heavy: {size: 2}\nold: {size: 1}\n")
    (d / "job.yaml").write_text(JOB.format(name="job", pool="db-heavy"))
    commit_all(repo, "base")
    (d / "pools.yaml").write_text("db-heavy: {size: 3}\nnew: {size: 4}\n")
    commit_all(repo, "head")
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", cwd=repo)
    assert r.returncode == 2, r.stderr
    assert "warning: pools.yaml: pool db-heavy: size 2 -> 3" in r.stdout
    assert "warning: pools.yaml: pool new added: size 4" in r.stdout
    assert "warning: pools.yaml: pool old removed (size 1)" in r.stdout
    same = reconciler("plan", "--dir", "schedules", "--base", "HEAD", cwd=repo)
    assert same.returncode == 0, same.stdout


def test_the_pools_example_is_valid(reconciler: Run) -> None:
    from tests.conftest import ROOT

    r = reconciler("validate", str(ROOT / "examples" / "pools"))
    assert r.returncode == 0, r.stdout
    assert "1 file, 4 schedules: valid" in r.stdout
