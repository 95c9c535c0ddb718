"""The real `reconciler` command, run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]
GOOD = 'name: good\nschedule: {cron: "0 2 * * *"}\nrun: {command: [/bin/true]}\n'
BAD = 'name: bad\nschedule:\n  cron: "0 2 * *"\nrun: {command: [/bin/true]}\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yml").write_text(BAD)
    return tmp_path


def test_validate_passes_the_bundled_schedules(reconciler: Run) -> None:
    r = reconciler("validate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith(": valid")


def test_validate_reports_each_problem_as_path_line_col_jsonpath_message(reconciler: Run, tree: Path) -> None:
    r = reconciler("validate", str(tree))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == (f"{tree}/bad.yml:3:9: $.schedule.cron: 4 fields given; cron has five "
                        "(minute hour day-of-month month day-of-week)")
    assert lines[-1] == "2 files, 1 schedule: 1 error in 1 file"


def test_validate_json_gives_the_same_facts_to_machines(reconciler: Run, tree: Path) -> None:
    r = reconciler("validate", "--format", "json", str(tree))
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["valid"] is False
    (p,) = data["problems"]
    assert {k: p[k] for k in ("path", "line", "column", "pointer", "severity")} == {
        "path": f"{tree}/bad.yml", "line": 3, "column": 9, "pointer": "/schedule/cron", "severity": "error"}
    assert p["message"].startswith("4 fields given")


def test_validate_github_format_prints_workflow_commands(reconciler: Run, tree: Path) -> None:
    r = reconciler("validate", "--format", "github", str(tree))
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith(
        f"::error file={tree}/bad.yml,line=3,col=9,title=$.schedule.cron::4 fields given")


def test_validate_exit_codes_distinguish_valid_invalid_and_usage(reconciler: Run, tree: Path) -> None:
    assert reconciler("validate", str(tree / "good.yaml")).returncode == 0
    assert reconciler("validate", str(tree / "bad.yml")).returncode == 1
    missing = reconciler("validate", str(tree / "missing"))
    assert missing.returncode == 2
    assert "no such file or directory" in missing.stderr
    assert reconciler("validate", "--format", "xml", str(tree)).returncode == 2


def test_validate_of_a_directory_without_schedule_files_fails(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("validate", str(tmp_path))
    assert r.returncode == 1
    assert "no *.yaml or *.yml files found" in r.stdout


def test_warnings_do_not_fail_validation(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "past.yaml").write_text('name: past\nschedule: {at: "2001-01-01T00:00:00Z"}\n'
                                        'run: {command: [/bin/true]}\n')
    r = reconciler("validate", str(tmp_path))
    assert r.returncode == 0
    assert "warning: at is in the past" in r.stdout


def test_schema_command_prints_the_committed_schema_file(reconciler: Run) -> None:
    r = reconciler("schema")
    assert r.returncode == 0
    assert r.stdout == (ROOT / "schema" / "schedule.schema.json").read_text()
    schema = json.loads(r.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]


def test_python_dash_m_runs_the_same_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "reconciler", "validate", "schedules"], cwd=ROOT,
                       capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 0, r.stderr


def test_validate_does_not_import_the_scheduler_the_watcher_or_the_ledger(tmp_path: Path) -> None:
    code = ("import sys\nfrom reconciler.cli import app\n"
            "try:\n    app(['validate', 'schedules'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('apscheduler', 'watchfiles', 'sqlite3') or m.startswith('reconciler.ledger')))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                       timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def test_next_json_lists_utc_instants_strictly_after(reconciler: Run) -> None:
    r = reconciler("next", "--cron", "0 12 * * sun", "--after", "2026-01-18T12:00:00Z", "-n", "2", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"next": ["2026-01-25T12:00:00Z", "2026-02-01T12:00:00Z"]}


def test_next_text_shows_local_and_utc_times_with_a_description(reconciler: Run) -> None:
    r = reconciler("next", "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
                   "--after", "2026-03-28T12:00:00Z", "-n", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "At 02:30  [Europe/Berlin]"
    assert "2026-03-29 03:00:00 CEST (Sun)  2026-03-29T01:00:00Z" in lines[1]
    assert "2026-03-30 02:30:00 CEST (Mon)  2026-03-30T00:30:00Z" in lines[2]


def test_next_for_a_named_schedule_reads_the_directory(reconciler: Run, tree: Path) -> None:
    r = reconciler("next", "good", "--dir", str(tree), "--after", "2026-01-01T00:00:00Z", "-n", "1", "-f", "json")
    assert json.loads(r.stdout) == {"next": ["2026-01-01T02:00:00Z"]}


@pytest.mark.parametrize(("expr", "reason"), [("0 0 30 2 *", "can never fire"), ("61 * * * *", "out of range")])
def test_next_with_an_invalid_expression_exits_1_with_the_reason(reconciler: Run, expr: str, reason: str) -> None:
    r = reconciler("next", "--cron", expr)
    assert r.returncode == 1
    assert reason in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("command", [["run", "--dir", "schedules", "--listen", "127.0.0.1:0"], ["history"],
                                     ["plan", "--dir", "schedules"], ["trigger", "heartbeat", "--dir", "schedules"]])
def test_a_file_that_is_not_a_ledger_is_a_clear_error_not_a_traceback(reconciler: Run, tmp_path: Path,
                                                                       command: list[str]) -> None:
    bad = tmp_path / "ledger.db"
    bad.write_text("these are not the bytes of a SQLite database, not even close\n" * 20)
    r = reconciler(*command, "--ledger", str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == f"reconciler: {bad}: cannot open the ledger: file is not a database\n"
    assert bad.read_text().startswith("these are not")  # left as it was found


def test_a_postgresql_ledger_url_is_refused_without_echoing_its_password(reconciler: Run) -> None:
    r = reconciler("history", "--ledger", "postgresql://ops:hunter2@db.internal/sched")
    assert r.returncode == 1
    assert "hunter2" not in r.stderr
    assert r.stderr == "reconciler: db.internal/sched: the PostgreSQL ledger is not available yet; use a SQLite path\n"


def test_a_rescan_more_often_than_once_a_second_is_a_usage_error(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("run", "--dir", "schedules", "--rescan", "100ms", "--ledger", str(tmp_path / "l.db"))
    assert r.returncode == 2
    assert "--rescan 100ms: rescan at most once a second" in r.stderr
    assert not (tmp_path / "l.db").exists()  # refused before anything was opened
