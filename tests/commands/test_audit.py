"""The audit trail on a real git repository with two authors, published as git-sync publishes it
(a worktree per commit, a link swapped atomically), applied by the real daemon, and read back by
`reconciler audit` and by the API."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.gitrepo import commit_info
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Commit
from tests.harness import Daemon, git, init_repo, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]
A_V1 = "name: backup\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true], timeout: 10m}\n"
A_V2 = A_V1.replace("timeout: 10m", "timeout: 1m")
B = "name: report\nschedule: {cron: '0 3 * * *'}\nrun: {command: [/bin/true]}\n"
ANN_AT, DANA_AT = "2026-11-20T09:00:00+01:00", "2026-11-21T17:30:00-05:00"


def commit_as(repo: Path, author: str, when: str, subject: str, files: dict[str, str | None]) -> str:
    for name, text in files.items():
        path = repo / "schedules" / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
    git(repo, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author.lower()}@example.invalid",
           "GIT_AUTHOR_DATE": when}
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", subject, "-m", "Longer body, not the subject."],
                   env=env, check=True, capture_output=True, timeout=30)
    return git(repo, "rev-parse", "HEAD")


def publish(root: Path, repo: Path, sha: str) -> None:
    """As git-sync: a worktree named by the commit, then the link renamed over the old one."""
    git(repo, "worktree", "add", "-q", "--detach", str(root / ".worktrees" / sha), sha)
    os.symlink(f".worktrees/{sha}", root / "tmp-link")
    os.replace(root / "tmp-link", root / "current")


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_commit_info_reads_author_time_and_subject_from_the_commit_object(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    sha = commit_as(repo, "Dana", DANA_AT, "Shorter timeout for backup", {"a.yaml": A_V1})
    assert commit_info(repo / "schedules", sha) == Commit(
        sha, "Dana", "dana@example.invalid", datetime(2026, 11, 21, 22, 30, tzinfo=UTC), "Shorter timeout for backup")


def test_audit_shows_per_schedule_the_commits_of_two_authors_with_their_diffs(
        tmp_path: Path, reconciler: Run, started: list[Daemon]) -> None:
    repo, root = tmp_path / "repo", tmp_path / "sync"
    init_repo(repo)
    root.mkdir()
    first = commit_as(repo, "Ann", ANN_AT, "Add backup and report", {"a.yaml": A_V1, "b.yaml": B})
    publish(root, repo, first)
    d = Daemon(root / "current" / "schedules", tmp_path)
    started.append(d)
    d.wait_event("revision.applied", revision=first)
    second = commit_as(repo, "Dana", DANA_AT, "Shorter timeout for backup; drop the report", {
        "a.yaml": A_V2, "b.yaml": None})
    publish(root, repo, second)
    d.wait_event("revision.applied", revision=second)
    base = f"http://{d.wait_event('http.listening')['address']}"
    # The revision is recorded off the reconcile path, after it is applied: wait for its audit.
    status, backup = wait_for(lambda: (r := get(base + "/api/v1/schedules/backup/history"))[0] == 200
                              and len(r[1]["changes"]) == 2 and r, what="the second commit's audit")
    assert status == 200
    assert [(c["commit"]["author"], c["action"], c["fields"]) for c in backup["changes"]] == [
        ("Dana", "change", [{"path": "run.timeout", "old": "10m", "new": "1m"}]), ("Ann", "add", [])]
    assert backup["changes"][0]["commit"]["subject"] == "Shorter timeout for backup; drop the report"
    assert backup["changes"][0]["commit"]["authored_at"] == "2026-11-21T22:30:00Z"
    assert backup["changes"][0]["commit"]["sha"] == second
    # A removed schedule keeps its history; a name never seen has none.
    status, report = get(base + "/api/v1/schedules/report/history")
    assert (status, [(c["commit"]["author"], c["action"]) for c in report["changes"]]) == (
        200, [("Dana", "remove"), ("Ann", "add")])
    assert get(base + "/api/v1/schedules/nobody/history")[0] == 404

    # A restart applies the same commit again: nothing is recorded as added a second time.
    d.stop()
    again = Daemon(root / "current" / "schedules", tmp_path)
    started.append(again)
    again.wait_event("revision.applied", revision=second)
    again.wait_event("http.listening")
    again.stop()  # the revision is recorded before the daemon stops

    r = reconciler("audit", "backup", "--ledger", str(d.ledger), "--format", "json")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)
    assert entry["schedule"] == "backup"
    assert [(c["commit"]["author"], c["action"]) for c in entry["changes"]] == [("Dana", "change"), ("Ann", "add")]

    text = reconciler("audit", "--ledger", str(d.ledger))
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "backup"
    assert 'run.timeout: "10m" -> "1m"' in text.stdout
    assert f"{second[:12]} Dana <dana@example.invalid> at 2026-11-21T22:30:00Z" in text.stdout
    lines = text.stdout.splitlines()
    assert lines[lines.index("report") + 1].startswith("  - 2026")  # the removal, newest first, under `report`

    # --since leaves out what was applied before it.
    ledger = open_ledger(d.ledger, create=False)
    try:
        second_applied = next(r.applied_at for r in ledger.audit() if r.revision == second and r.changes)
    finally:
        ledger.close()
    recent = reconciler("audit", "backup", "--ledger", str(d.ledger), "--format", "json",
                        "--since", second_applied.isoformat())
    assert [c["commit"]["author"] for c in json.loads(recent.stdout)[0]["changes"]] == ["Dana"]

    unknown = reconciler("audit", "backpu", "--ledger", str(d.ledger))
    assert unknown.returncode == 1
    assert "did you mean 'backup'" in unknown.stderr
