"""`reconciler plan --base REF` on a real git repository, read from git objects (no checkout)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]


def sched(name: str, cron: str = "0 2 * * *", extra: str = "") -> str:
    return (f"name: {name}\nschedule: {{cron: '{cron}', timezone: Europe/Berlin}}\n"
            f"run: {{command: [/bin/true]}}\n{extra}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    init_repo(r)
    (r / "schedules").mkdir()
    (r / "schedules" / "keep.yaml").write_text(sched("keep"))
    (r / "schedules" / "edit.yaml").write_text(sched("edit"))
    (r / "schedules" / "drop.yaml").write_text(sched("drop"))
    (r / "schedules" / "old.yaml").write_text(sched("old-name"))
    commit_all(r, "base")
    (r / "schedules" / "edit.yaml").write_text(sched("edit", cron="30 3 * * *"))
    (r / "schedules" / "drop.yaml").unlink()
    (r / "schedules" / "old.yaml").write_text(sched("new-name"))
    (r / "schedules" / "add.yaml").write_text(sched("added", cron="0 12 * * mon"))
    commit_all(r, "head")
    return r


def test_plan_against_the_base_commit_lists_adds_changes_removes_and_renames(reconciler: Run, repo: Path) -> None:
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", cwd=repo)
    assert r.returncode == 2, r.stderr
    out = r.stdout
    assert out.splitlines()[0] == "Plan against git HEAD~1: 2 to add, 1 to change, 2 to remove, 1 unchanged."
    assert "+ added  (schedules/add.yaml:1)" in out
    assert "+ new-name" in out
    assert "- old-name" in out
    assert "- drop" in out
    assert '    schedule.cron: "0 2 * * *" -> "30 3 * * *"' in out
    assert "keep" not in out.split("\n", 1)[1]


def test_plan_json_includes_the_next_three_fire_times_of_added_and_changed(reconciler: Run, repo: Path) -> None:
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", "--format", "json", cwd=repo)
    data = json.loads(r.stdout)
    assert data["summary"] == {"add": 2, "change": 1, "remove": 2, "unchanged": 1}
    (change,) = data["change"]
    assert change["fields"] == [{"path": "schedule.cron", "old": "0 2 * * *", "new": "30 3 * * *"}]
    assert len(change["next"]) == 3
    assert all(t.endswith("Z") for t in change["next"])
    assert [c["name"] for c in data["remove"]] == ["drop", "old-name"]


def test_plan_with_no_changes_exits_0(reconciler: Run, repo: Path) -> None:
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD", cwd=repo)
    assert r.returncode == 0
    assert "0 to add, 0 to change, 0 to remove, 4 unchanged" in r.stdout


def test_plan_reads_git_objects_without_touching_the_work_tree(reconciler: Run, repo: Path) -> None:
    (repo / "schedules" / "uncommitted.yaml").write_text(sched("uncommitted"))
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD", cwd=repo)
    assert r.returncode == 2
    assert "+ uncommitted" in r.stdout
    assert (repo / "schedules" / "uncommitted.yaml").exists()
    assert subprocess.run(["git", "-C", str(repo), "stash", "list"], capture_output=True, text=True).stdout == ""


def test_an_invalid_head_exits_1_with_file_and_line(reconciler: Run, repo: Path) -> None:
    (repo / "schedules" / "edit.yaml").write_text(sched("edit", cron="0 0 * * 8"))
    commit_all(repo, "bad")
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", cwd=repo)
    assert r.returncode == 1
    assert "schedules/edit.yaml:2:" in r.stderr
    assert "8 is out of range 0-7" in r.stderr


def test_an_unknown_base_ref_is_an_error(reconciler: Run, repo: Path) -> None:
    r = reconciler("plan", "--dir", "schedules", "--base", "no-such-ref", cwd=repo)
    assert r.returncode == 1
    assert "--base no-such-ref" in r.stderr


def test_plan_against_the_ledger_compares_with_the_last_applied_revision(
        reconciler: Run, repo: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from reconciler.core.loader import Loader
    from reconciler.ledger.sqlite import SqliteLedger

    loaded = Loader().load_paths([repo / "schedules"])
    ledger = SqliteLedger(tmp_path / "l.db")
    ledger.record_revision("r1", datetime.now(UTC), {}, {s.name: s.spec for s in loaded.schedules},
                           {s.name: s.spec_hash for s in loaded.schedules})
    ledger.close()
    (repo / "schedules" / "keep.yaml").write_text(sched("keep", extra="description: now documented\n"))
    r = reconciler("plan", "--dir", "schedules", "--ledger", str(tmp_path / "l.db"), cwd=repo)
    assert r.returncode == 2
    assert "~ keep  (schedules/keep.yaml:1)  [metadata only]" in r.stdout
    assert 'description: (absent) -> "now documented"' in r.stdout
