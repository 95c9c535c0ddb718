"""`plan --base` over a change to a shared windows file alone: the schedules naming it are warned
about, with the next fire times the window now skips (the calendar case is in test_time_rules_cli)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]
JOB = ("name: report\nschedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"
       "windows: [freeze]\n")


def test_plan_warns_when_a_windows_file_change_skips_next_fire_times(reconciler: Run, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    d = repo / "schedules"
    (d / "windows").mkdir(parents=True)
    (d / "job.yaml").write_text(JOB)
    (d / "windows" / "freeze.yaml").write_text("windows: [{kind: deny, cron: '0 0 1 1 *', duration: 1h}]\n")
    commit_all(repo, "base")
    assert reconciler("plan", "--dir", str(d), "--base", "HEAD").returncode == 0
    # Now every day from 01:00 to 03:00 Berlin is denied: the 02:00 slots are skipped.
    (d / "windows" / "freeze.yaml").write_text(
        "windows: [{kind: deny, cron: '0 1 * * *', duration: 2h, timezone: Europe/Berlin}]\n")
    r = reconciler("plan", "--dir", str(d), "--base", "HEAD")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "warning: report: calendar or windows files move its next fire times: " in r.stdout
    assert "skipped: window: inside window freeze (deny cron '0 1 * * *' for 2h) (was: runs)" in r.stdout
