"""The pull-request workflow: the action, the workflows and the pre-commit hook, run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.harness import commit_all, init_repo

YAML_FILES = [".github/workflows/ci.yml", "action.yml", ".pre-commit-hooks.yaml",
              "examples/schedules-repo/.github/workflows/schedules.yml",
              "examples/schedules-repo/.pre-commit-config.yaml"]


def load(rel: str) -> Any:
    return yaml.safe_load((ROOT / rel).read_text())


@pytest.mark.parametrize("rel", YAML_FILES)
def test_workflow_and_hook_files_parse_as_yaml(rel: str) -> None:
    assert isinstance(load(rel), dict | list)


def test_the_ci_workflow_runs_the_single_entry_point_on_three_pythons() -> None:
    ci = load(".github/workflows/ci.yml")
    job = ci["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ["bash .ci/run"]
    assert (ROOT / ".ci" / "run").is_file()
    ci_run = (ROOT / ".ci" / "run").read_text()
    readme_test = re.search(r"```sh\n(python3 -m venv .venv && .venv/bin/pip install -q -e '\.\[test\]'.*)\n```",
                            (ROOT / "README.md").read_text())
    assert readme_test is not None
    assert readme_test.group(1) in ci_run


def test_the_example_workflow_uses_this_action_and_the_hook_ids_match() -> None:
    wf = load("examples/schedules-repo/.github/workflows/schedules.yml")
    uses = [s["uses"] for s in wf["jobs"]["check"]["steps"] if "uses" in s]
    assert any(u.startswith("OWNER/schedule-reconciler@") for u in uses)
    assert (ROOT / "action.yml").is_file()
    hook_ids = {h["id"] for h in load(".pre-commit-hooks.yaml")}
    used = {h["id"] for r in load("examples/schedules-repo/.pre-commit-config.yaml")["repos"] for h in r["hooks"]}
    assert used <= hook_ids
    assert (ROOT / "examples/schedules-repo/schedules").is_dir()
    assert (ROOT / "examples/schedules-repo/README.md").is_file()


def test_the_example_repository_schedules_are_valid(reconciler: Any) -> None:
    r = reconciler("validate", str(ROOT / "examples/schedules-repo/schedules"))
    assert r.returncode == 0, r.stdout


@pytest.fixture(scope="module")
def action_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh virtual environment: the action's install step installs this package into it."""
    home = tmp_path_factory.mktemp("action-venv")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / "bin"
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(home / "venv")}


def action_steps() -> list[dict[str, Any]]:
    return [s for s in load("action.yml")["runs"]["steps"] if "run" in s]


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str],
             values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    step_env = {k: values[k] for k in step.get("env", {})}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env={**env, **step_env}, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def installed_env(action_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The action's install step, run once: a real (not editable) install of this package."""
    install = action_steps()[0]
    r = run_step(install, tmp_path_factory.mktemp("install"), action_env, {"RECONCILER_SOURCE": str(ROOT)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert Path(action_env["VIRTUAL_ENV"], "bin", "reconciler").exists()
    return action_env


def test_the_action_steps_validate_and_plan_a_pull_request(tmp_path: Path, installed_env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    (repo / "schedules").mkdir()
    (repo / "schedules" / "a.yaml").write_text("name: a\nschedule: {cron: '0 2 * * *'}\nrun: {command: [x]}\n")
    base = commit_all(repo, "base")
    (repo / "schedules" / "b.yaml").write_text("name: b\nschedule: {cron: '0 3 * * *'}\nrun: {command: [y]}\n")
    commit_all(repo, "head")
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    values = {"RECONCILER_SOURCE": str(ROOT), "RECONCILER_PATHS": "schedules", "RECONCILER_DIR": "schedules",
              "RECONCILER_BASE": base}
    env = {**installed_env, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
           "RUNNER_TEMP": str(tmp_path)}
    _, validate, plan = action_steps()
    v = run_step(validate, repo, env, values)
    assert v.returncode == 0, v.stdout + v.stderr
    p = run_step(plan, repo, env, values)
    assert p.returncode == 0, p.stdout + p.stderr  # exit 2 ("changes") is not a failure here
    assert summary.read_text().startswith("### Schedules: 1 to add, 0 to change, 0 to remove")
    assert f"plan-file={tmp_path}/reconciler-plan.md" in output.read_text()

    (repo / "schedules" / "b.yaml").write_text("name: b\nschedule: {cron: '0 3 * * 8'}\nrun: {command: [y]}\n")
    bad = run_step(validate, repo, env, values)
    assert bad.returncode == 1
    assert "::error file=schedules/b.yaml,line=2,col=" in bad.stdout


def test_init_from_an_installed_package_writes_every_file_of_the_scaffold(
        tmp_path: Path, installed_env: dict[str, str]) -> None:
    exe = str(Path(installed_env["VIRTUAL_ENV"], "bin", "reconciler"))
    r = subprocess.run([exe, "init", "repo"], cwd=tmp_path, env=installed_env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    example = ROOT / "examples" / "schedules-repo"
    for p in (p for p in example.rglob("*") if p.is_file()):  # the dot-files too: package data must carry them
        assert (tmp_path / "repo" / p.relative_to(example)).read_bytes() == p.read_bytes()
    v = subprocess.run([exe, "validate"], cwd=tmp_path / "repo", env=installed_env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert v.returncode == 0, v.stdout + v.stderr


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.mark.parametrize(("content", "passes"), [
    ("name: good\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true]}\n", True),
    ("name: bad\nschedule: {cron: '0 2 * *'}\nrun: {command: [/bin/true]}\n", False),
])
def test_pre_commit_try_repo_runs_the_hook(tmp_path: Path, pre_commit_home: Path, content: str, passes: bool) -> None:
    repo = tmp_path / "user-repo"
    init_repo(repo)
    (repo / "schedules").mkdir()
    (repo / "schedules" / "job.yaml").write_text(content)
    commit_all(repo, "schedules")
    exe = Path(sys.executable).with_name("pre-commit")
    r = subprocess.run([str(exe), "try-repo", str(ROOT), "reconciler-validate", "--files", "schedules/job.yaml"],
                       cwd=repo, capture_output=True, text=True, timeout=900, check=False,
                       env={**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home)})
    out = r.stdout + r.stderr
    if passes:
        assert r.returncode == 0, out
        assert "Passed" in out
    else:
        assert r.returncode == 1, out
        assert "Failed" in out
        assert "schedules/job.yaml:2:" in out
        assert "4 fields given" in out


def test_the_pre_commit_hook_checks_the_whole_directory_so_a_reused_name_is_caught(
        tmp_path: Path, pre_commit_home: Path) -> None:
    repo = tmp_path / "user-repo"
    init_repo(repo)
    (repo / "schedules").mkdir()
    (repo / "schedules" / "a.yaml").write_text("name: report\nschedule: {cron: '0 2 * * *'}\n"
                                               "run: {command: [/bin/true]}\n")
    commit_all(repo, "one schedule")
    (repo / "schedules" / "b.yaml").write_text("name: report\nschedule: {cron: '0 3 * * *'}\n"
                                               "run: {command: [/bin/true]}\n")
    exe = Path(sys.executable).with_name("pre-commit")
    # Only the new file changed, as in a commit that adds it: the daemon would refuse the whole set.
    r = subprocess.run([str(exe), "try-repo", str(ROOT), "reconciler-validate", "--files", "schedules/b.yaml"],
                       cwd=repo, capture_output=True, text=True, timeout=900, check=False,
                       env={**os.environ, "PRE_COMMIT_HOME": str(pre_commit_home)})
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "schedules/b.yaml:1:1: $.name: name 'report' is used more than once" in out


def test_the_hook_validates_the_configured_paths_not_the_changed_files() -> None:
    (hook,) = load(".pre-commit-hooks.yaml")
    assert hook["pass_filenames"] is False
    (example,) = [h for r in load("examples/schedules-repo/.pre-commit-config.yaml")["repos"] for h in r["hooks"]]
    assert example["args"] == ["schedules"]
