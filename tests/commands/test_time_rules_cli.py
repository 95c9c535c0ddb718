"""validate, next and plan with windows and calendars, through the real command."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from reconciler.core.loader import Loader
from tests.conftest import NOW, ROOT
from tests.harness import commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]
EXAMPLES = [ROOT / "examples" / n for n in ("weekday-holidays.yaml", "nightly-window.yaml", "payroll.yaml")]


def test_the_examples_resolve_their_shared_calendars_and_windows() -> None:
    result = Loader().load_paths(EXAMPLES, now=NOW)
    assert result.problems == ()
    assert {s.name: (len(s.rules.windows), len(s.rules.exclude), len(s.rules.only)) for s in result.schedules} == {
        "weekday-report": (0, 2, 0), "nightly-reindex": (2, 0, 0), "payroll": (0, 0, 1)}


def directory(tmp_path: Path, schedule: str, **files: str) -> Path:
    d = tmp_path / "schedules"
    d.mkdir()
    (d / "job.yaml").write_text(schedule)
    for rel, text in files.items():
        (d / rel.replace("__", "/")).parent.mkdir(exist_ok=True)
        (d / rel.replace("__", "/")).write_text(text)
    return d


JOB = ("name: report\nschedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n")


def test_validate_names_the_file_line_and_field_of_a_missing_calendar_with_a_did_you_mean(
        reconciler: Run, tmp_path: Path) -> None:
    d = directory(tmp_path, JOB + "calendar: {exclude: [de-by-holiday]}\nwindows: [freeze]\n",
                  **{"calendars__de-by-holidays.yaml": "holidays: {country: DE}\n"})
    r = reconciler("validate", str(d))
    assert r.returncode == 1
    assert (f"{d}/job.yaml:1:1: $.calendar.exclude[0]: calendar 'de-by-holiday' cannot be used: no "
            "calendars/de-by-holiday.yaml or .ics beside the schedules (did you mean 'de-by-holidays'?)") in r.stdout
    assert "$.windows[0]: window 'freeze' cannot be used: no windows/freeze.yaml beside the schedules" in r.stdout


def test_validate_checks_the_calendar_files_themselves(reconciler: Run, tmp_path: Path) -> None:
    d = directory(tmp_path, JOB + "calendar: {exclude: [bad]}\n",
                  **{"calendars__bad.yaml": "description: x\nholidays: {country: DE, subdivision: XX}\n"})
    r = reconciler("validate", str(d))
    assert r.returncode == 1
    assert f"{d}/calendars/bad.yaml:2:" in r.stdout
    assert "$.holidays.subdivision: the holidays package knows no subdivision 'XX' of DE" in r.stdout
    assert "calendar 'bad' cannot be used: " in r.stdout  # and the schedule naming it says why


def test_next_says_which_slots_a_calendar_skips(reconciler: Run, tmp_path: Path) -> None:
    d = directory(tmp_path, JOB + "calendar: {exclude: [de-by-holidays]}\n",
                  **{"calendars__de-by-holidays.yaml": "holidays: {country: DE, subdivision: BY}\n"})
    r = reconciler("next", "report", "--dir", str(d), "--after", "2026-12-24T12:00:00Z", "-n", "3")
    assert r.returncode == 0, r.stderr
    assert "2026-12-25 02:00:00 CET (Fri)  2026-12-25T01:00:00Z" in r.stdout
    assert r.stdout.splitlines()[1].endswith("skipped: calendar de-by-holidays (Christmas Day)")
    j = json.loads(reconciler("next", "report", "--dir", str(d), "--after", "2026-12-24T12:00:00Z", "-n", "3",
                              "--format", "json").stdout)
    assert j["notes"] == ["skipped: calendar de-by-holidays (Christmas Day)",
                          "skipped: calendar de-by-holidays (Second Day of Christmas)", ""]


def test_plan_shows_when_a_calendar_change_moves_next_fire_times(reconciler: Run, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    d = repo / "schedules"
    (d / "calendars").mkdir(parents=True)
    (d / "job.yaml").write_text(JOB + "calendar: {exclude: [shutdown]}\n")
    (d / "calendars" / "shutdown.yaml").write_text("dates: [2000-01-01]\n")
    commit_all(repo, "base")
    assert reconciler("plan", "--dir", str(d), "--base", "HEAD").returncode == 0
    tomorrow = subprocess.run(["date", "-u", "-d", "+2 days", "+%Y-%m-%d"], capture_output=True, text=True,
                              check=True).stdout.strip()
    (d / "calendars" / "shutdown.yaml").write_text(f"dates: [{tomorrow}]\n")
    r = reconciler("plan", "--dir", str(d), "--base", "HEAD")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "warning: report: calendar or windows files move its next fire times: " in r.stdout
    assert f"{tomorrow} 02:00:00" in r.stdout
    assert "skipped: calendar shutdown (listed) (was: runs)" in r.stdout
