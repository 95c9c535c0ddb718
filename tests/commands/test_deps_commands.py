"""`show --effective`, `validate --effective/--selector` and `plan` with directory defaults and
dependencies (issue 18), through the real command."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]


def job(name: str, when: str = '{cron: "0 2 * * *"}', extra: str = "") -> str:
    return f"name: {name}\nschedule: {when}\nrun: {{command: [/bin/true]}}\n{extra}"


def tree(root: Path) -> Path:
    (root / "team").mkdir(parents=True)
    (root / "_defaults.yaml").write_text("labels: {org: acme}\nschedule: {timezone: Europe/Berlin}\n")
    (root / "team" / "_defaults.yaml").write_text("# the team's\nlabels: {team: data}\npolicy: {retries: {limit: 2}}\n")
    (root / "team" / "extract.yaml").write_text(job("extract", extra="labels: {team: mine}\n"))
    (root / "team" / "load.yaml").write_text(job("load", "{after: [extract]}"))
    return root


def test_show_effective_prints_the_merged_spec_with_the_file_and_line_of_every_inherited_value(
        reconciler: Run, tmp_path: Path) -> None:
    d = tree(tmp_path / "s")
    r = reconciler("show", "extract", "--dir", str(d), "--effective")
    assert r.returncode == 0, r.stderr
    assert f'schedule.timezone: "Europe/Berlin"  # {d}/_defaults.yaml:2' in r.stdout
    assert f'labels.team: "mine"  # {d}/team/extract.yaml:1' in r.stdout  # its own value wins
    assert f'labels.org: "acme"  # {d}/_defaults.yaml:1' in r.stdout
    assert f"policy.retries.limit: 2  # {d}/team/_defaults.yaml:3" in r.stdout
    assert "downstreams: load" in r.stdout
    plain = reconciler("show", "extract", "--dir", str(d))
    assert "timezone" not in plain.stdout  # as written
    data = json.loads(reconciler("show", "load", "--dir", str(d), "--effective", "-f", "json").stdout)
    assert data["upstreams"] == ["extract"]
    assert data["origins"]["policy.retries.limit"] == f"{d}/team/_defaults.yaml:3"
    missing = reconciler("show", "extrct", "--dir", str(d))
    assert missing.returncode == 1
    assert "did you mean 'extract'" in missing.stderr


def test_validate_effective_and_a_selector_shard_that_would_cut_a_dependency(reconciler: Run, tmp_path: Path) -> None:
    d = tree(tmp_path / "s")
    r = reconciler("validate", str(d), "--effective")
    assert r.returncode == 0, r.stdout
    assert f'  schedule.timezone: "Europe/Berlin"  # {d}/_defaults.yaml:2' in r.stdout
    (d / "team" / "load.yaml").write_text(job("load", "{after: [extract]}", "labels: {team: other}\n"))
    cut = reconciler("validate", str(d), "--selector", "team=other")
    assert cut.returncode == 1
    assert f"{d}/team/load.yaml:1:1: $.schedule.after: depends on 'extract', which --selector team=other" in cut.stdout


def test_plan_shows_the_dependency_edges_and_the_defaults_a_change_brings(reconciler: Run, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    d = tree(repo / "schedules")
    commit_all(repo, "base")
    (d / "team" / "_defaults.yaml").write_text("# the team's\nlabels: {team: data}\npolicy: {retries: {limit: 3}}\n")
    (d / "team" / "report.yaml").write_text(job("report", "{after: [load], on: finished}"))
    commit_all(repo, "head")
    r = reconciler("plan", "--dir", str(d), "--base", "HEAD~1")
    assert r.returncode == 2, r.stderr
    assert "+ dependency: report after load" in r.stdout
    assert f"policy.retries.limit: 2 -> 3  (from {d}/team/_defaults.yaml:3)" in r.stdout
    assert "~ extract" in r.stdout and "~ load" in r.stdout  # noqa: PT018 - one line each
    assert "when: after load (on finished)" in r.stdout
    md = reconciler("plan", "--dir", str(d), "--base", "HEAD~1", "--format", "markdown").stdout
    assert "```mermaid\ngraph LR\n  load --> report\n```" in md


def test_validates_parallel_load_applies_defaults_and_checks_the_graph_as_a_single_pass_does(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from reconciler.commands.validate import load
    from reconciler.core.loader import Loader

    d = tree(tmp_path / "s")
    (d / "team" / "bad.yaml").write_text(job("bad", "{after: [nope]}"))
    now = datetime.now(UTC)

    def seen(problems: object) -> list[tuple[str, int, str]]:
        return sorted((Path(p.path).name, p.line, p.message) for p in problems)  # type: ignore[attr-defined]

    single = Loader().load_paths([d], now, build_records=False)
    parallel = load([str(d)], now, parallel_min=2)
    assert seen(parallel.problems) == seen(single.problems)
    assert any("depends on 'nope'" in m for _, _, m in seen(parallel.problems))
    assert sorted(parallel.names) == sorted(single.names)
