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


def test_markdown_plan_has_a_summary_a_table_and_escapes_untrusted_text(reconciler: Run, repo: Path) -> None:
    (repo / "schedules" / "keep.yaml").write_text(sched("keep", extra="description: 'a | b <script>x</script>'\n"))
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", "--format", "markdown", cwd=repo)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[0] == "### Schedules: 2 to add, 2 to change, 2 to remove"
    assert "| | schedule | change | when | next fire times |" in lines
    row = next(line for line in lines if line.startswith("| change | `keep` |"))
    assert "a \\| b &lt;script&gt;x&lt;/script&gt;" in row
    assert "<script>" not in r.stdout
    edit = next(line for line in lines if line.startswith("| change | `edit` |"))
    assert '`schedule.cron`: "0 2 \\* \\* \\*" → "30 3 \\* \\* \\*"' in edit
    assert edit.count("CET") + edit.count("CEST") == 3  # three next fire times in the schedule's zone


def test_plan_warns_a_reviewer(reconciler: Run, repo: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from reconciler.core.policy import Cause, RunStatus
    from reconciler.ledger.base import Outcome
    from reconciler.ledger.sqlite import SqliteLedger

    (repo / "schedules" / "fast.yaml").write_text(
        "name: fast\nschedule: {every: 20s}\nrun: {command: [/bin/true]}\n")
    (repo / "schedules" / "past.yaml").write_text(
        "name: past\nschedule: {at: '2001-01-01T00:00:00Z'}\nrun: {command: [/bin/true]}\n")
    (repo / "schedules" / "keep.yaml").write_text(
        "name: keep\nschedule: {cron: '0 2 * * *', timezone: America/New_York}\nrun: {command: [/bin/true]}\n")
    (repo / "schedules" / "tz.yaml").write_text(
        "name: tz\nschedule: {cron: '0 2 * * *', timezone: Asia/Tokyo}\nrun: {command: [/bin/true]}\n")
    commit_all(repo, "more")
    (repo / "schedules" / "tz.yaml").write_text(
        "name: tz\nschedule: {cron: '0 2 * * *', timezone: Europe/Paris}\nrun: {command: [/bin/true]}\n")
    (repo / "schedules" / "keep.yaml").unlink()
    ledger = SqliteLedger(tmp_path / "l.db")
    now = datetime.now(UTC)
    run_id = ledger.claim("keep", now - timedelta(hours=2), attempt=1, cause=Cause.SCHEDULE, revision="r",
                          started_at=now - timedelta(hours=2))
    assert run_id is not None
    ledger.finish(run_id, Outcome(RunStatus.SUCCEEDED, now))
    ledger.close()
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD", "--ledger", str(tmp_path / "l.db"),
                   "--format", "json", cwd=repo)
    assert r.returncode == 2, r.stderr
    warnings = {(w["schedule"], w["message"].split(":")[0].split(",")[0]) for w in json.loads(r.stdout)["warnings"]}
    assert ("keep", "removed") in warnings
    assert ("tz", "time zone Asia/Tokyo -> Europe/Paris") in warnings
    assert all(name != "fast" and name != "past" for name, _ in warnings)  # unchanged: not in this plan
    r2 = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", "--format", "json", cwd=repo)
    names = {(w["schedule"], w["message"]) for w in json.loads(r2.stdout)["warnings"]}
    assert ("fast", "fires more than once a minute on average") in names
    assert ("past", "a one-time run in the past: it will never fire") in names


def test_an_unknown_base_ref_names_the_ref_and_the_repository(reconciler: Run, repo: Path) -> None:
    r = reconciler("plan", "--dir", "schedules", "--base", "no-such-branch", cwd=repo)
    assert r.returncode == 1
    expected = f"reconciler: --base no-such-branch: no commit 'no-such-branch' in the repository at {repo}"
    assert r.stderr.strip() == expected


def test_a_file_over_the_size_limit_at_the_base_is_not_read_whole(reconciler: Run, tmp_path: Path) -> None:
    from reconciler.core.yamlstrict import MAX_FILE_BYTES
    from reconciler.gitrepo import files_at

    r = tmp_path / "repo"
    init_repo(r)
    (r / "schedules").mkdir()
    (r / "schedules" / "keep.yaml").write_text(sched("keep"))
    (r / "schedules" / "huge.yaml").write_text("# padding\n" * 300_000)  # 3 MB
    commit_all(r, "base with a huge file")
    (r / "schedules" / "huge.yaml").unlink()
    commit_all(r, "head without it")
    at_base = files_at(r / "schedules", "HEAD~1")
    assert len(at_base["huge.yaml"]) == MAX_FILE_BYTES + 1  # enough to refuse it, no more
    assert at_base["keep.yaml"] == sched("keep").encode()
    out = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", cwd=r)
    assert out.returncode == 0, out.stderr  # the base's bad file was never a schedule
    assert "0 to add, 0 to change, 0 to remove, 1 unchanged" in out.stdout


def test_a_missing_ledger_is_a_usage_error_with_or_without_a_base(reconciler: Run, repo: Path, tmp_path: Path) -> None:
    for args in (["--base", "HEAD~1"], []):
        r = reconciler("plan", "--dir", "schedules", *args, "--ledger", str(tmp_path / "typo.db"), cwd=repo)
        assert r.returncode == 64, (args, r.stdout, r.stderr)
        assert r.stdout == ""
        assert r.stderr == f"reconciler: {tmp_path}/typo.db: no such ledger\n"


def test_a_ledger_beside_a_base_is_honoured_and_named_in_the_plan(reconciler: Run, repo: Path, tmp_path: Path) -> None:
    from reconciler.ledger.sqlite import SqliteLedger

    SqliteLedger(tmp_path / "l.db").close()
    r = reconciler("plan", "--dir", "schedules", "--base", "HEAD~1", "--ledger", str(tmp_path / "l.db"), cwd=repo)
    assert r.returncode == 2, r.stderr
    assert r.stdout.splitlines()[0] == (f"Plan against git HEAD~1 (recent runs from the ledger {tmp_path}/l.db): "
                                        "2 to add, 1 to change, 2 to remove, 1 unchanged.")
