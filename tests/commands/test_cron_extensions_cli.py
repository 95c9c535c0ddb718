"""The cron extensions beyond cronie through the real `reconciler` command: validate accepts them
and names file, line and field for a malformed one; --strict-cron (or RECONCILER_STRICT_CRON)
refuses them in validate, plan and run; next and plan say them in words."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import Daemon

Run = Callable[..., subprocess.CompletedProcess[str]]
PATCH = ("name: patch-window\nschedule:\n  cron: \"0 3 * * 2#3\"\n  timezone: Europe/Berlin\n"
         "run: {command: [/bin/true]}\n")
PAYROLL = "name: payroll\nschedule:\n  cron: \"0 6 LW * *\"\nrun: {command: [/bin/true]}\n"


def directory(tmp: Path, **files: str) -> Path:
    d = tmp / "schedules"
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.yaml").write_text(text)
    return d


def test_validate_accepts_the_extensions(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("validate", str(directory(tmp_path, patch=PATCH, payroll=PAYROLL)))
    assert (r.returncode, r.stdout.splitlines()[-1]) == (0, "2 files, 2 schedules: valid"), r.stdout


def test_validate_names_file_line_and_field_of_croniters_l5(reconciler: Run, tmp_path: Path) -> None:
    d = directory(tmp_path, last=PATCH.replace("2#3", "L5"))
    r = reconciler("validate", str(d))
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == (
        f"{d}/last.yaml:3:9: $.schedule.cron: day-of-week field: 'L5': cronsim and Quartz spell the last "
        "Friday 5L (weekday first); croniter's L5 is not accepted: write '5L'")


def test_validate_strict_cron_refuses_every_extension_naming_file_line_and_field(
        reconciler: Run, tmp_path: Path) -> None:
    d = directory(tmp_path, patch=PATCH, payroll=PAYROLL)
    r = reconciler("validate", "--strict-cron", str(d))
    assert r.returncode == 1
    assert r.stdout.splitlines()[:2] == [
        f"{d}/patch.yaml:3:9: $.schedule.cron: day-of-week field: '2#3' is an extension beyond cronie, "
        "refused by --strict-cron: plain cron has no last day, nearest weekday or nth weekday",
        f"{d}/payroll.yaml:3:9: $.schedule.cron: day-of-month field: 'LW' is an extension beyond cronie, "
        "refused by --strict-cron: plain cron has no last day, nearest weekday or nth weekday",
    ]


def test_the_strict_cron_setting_comes_from_the_environment_too(reconciler: Run, tmp_path: Path) -> None:
    d = str(directory(tmp_path, patch=PATCH))
    assert reconciler("validate", d, env={"RECONCILER_STRICT_CRON": "1"}).returncode == 1
    assert reconciler("validate", d, env={"RECONCILER_STRICT_CRON": "0"}).returncode == 0
    assert reconciler("validate", "--strict-cron", str(directory(tmp_path / "plain", good=PATCH.replace(
        "2#3", "tue")))).returncode == 0


def test_plan_says_the_extension_in_words_and_strict_cron_refuses_it(reconciler: Run, tmp_path: Path) -> None:
    d = str(directory(tmp_path, patch=PATCH))
    r = reconciler("plan", "--dir", d)
    assert r.returncode == 2, r.stderr
    assert "    when: At 03:00, on the third Tuesday of the month [Europe/Berlin]" in r.stdout.splitlines()
    strict = reconciler("plan", "--dir", d, "--strict-cron")
    assert strict.returncode == 1
    assert "day-of-week field: '2#3' is an extension beyond cronie, refused by --strict-cron" in strict.stderr


def test_next_says_the_extension_in_words_and_lists_its_days(reconciler: Run) -> None:
    # 2026: the weekday nearest the 15th of February and March (Sundays) is Monday the 16th.
    r = reconciler("next", "--cron", "0 9 15W * *", "--after", "2026-02-01T00:00:00Z", "-n", "2")
    assert r.returncode == 0, r.stderr
    head, first, second = r.stdout.splitlines()
    assert head == "At 09:00, on the weekday nearest day 15 of the month  [UTC]"
    assert first.startswith("  2026-02-16 09:00:00 UTC (Mon)  2026-02-16T09:00:00Z")
    assert second.startswith("  2026-03-16 09:00:00 UTC (Mon)  2026-03-16T09:00:00Z")


def test_run_strict_cron_rejects_a_revision_with_an_extension(started: list[Daemon], tmp_path: Path) -> None:
    d = directory(tmp_path, patch=PATCH)
    daemon = Daemon(d, tmp_path, "--strict-cron", "--listen", "none")
    started.append(daemon)
    daemon.wait_event("revision.rejected")
    problems = [e["problem"] for e in daemon.events("revision.problem")]
    assert problems == [f"{d}/patch.yaml:3:9: $.schedule.cron: day-of-week field: '2#3' is an extension beyond "
                        "cronie, refused by --strict-cron: plain cron has no last day, nearest weekday or nth weekday"]


def test_run_without_strict_cron_applies_the_extension(started: list[Daemon], tmp_path: Path) -> None:
    daemon = Daemon(directory(tmp_path, patch=PATCH), tmp_path, "--listen", "none")
    started.append(daemon)
    assert daemon.wait_event("revision.applied")["summary"].startswith("1 to add")
