"""The real `reconciler` command, run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_shape import cli_shape
from tests.conftest import ROOT
from tests.harness import Daemon

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
    assert missing.returncode == 64
    assert "no such file or directory" in missing.stderr
    assert reconciler("validate", "--format", "xml", str(tree)).returncode == 64


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


def unmeasured() -> dict[str, str]:
    """This environment without coverage's variables: a measured process imports what coverage
    needs (sqlite3 for its data), which is not what the reconciler imports."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def test_validate_does_not_import_the_scheduler_the_watcher_or_the_ledger(tmp_path: Path) -> None:
    # Only what the command imports counts, not what coverage's startup hook imported before it.
    code = ("import sys\nstartup = set(sys.modules)\nfrom reconciler.cli import app\n"
            "try:\n    app(['validate', 'schedules'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in set(sys.modules) - startup if m.split('.')[0] in "
            "('apscheduler', 'watchfiles', 'sqlite3') or m.startswith('reconciler.ledger')))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                       timeout=60, env=unmeasured())
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def test_next_json_lists_utc_instants_strictly_after(reconciler: Run) -> None:
    r = reconciler("next", "--cron", "0 12 * * sun", "--after", "2026-01-18T12:00:00Z", "-n", "2", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"next": ["2026-01-25T12:00:00Z", "2026-02-01T12:00:00Z"], "suspended": False}


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
    assert json.loads(r.stdout) == {"next": ["2026-01-01T02:00:00Z"], "suspended": False}


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


def test_an_unreachable_postgresql_ledger_is_reported_without_echoing_its_password(reconciler: Run) -> None:
    r = reconciler("history", "--ledger", "postgresql://ops:hunter2@127.0.0.1:1/sched")  # nobody listens on 1
    assert r.returncode == 1
    assert "hunter2" not in r.stderr
    assert r.stderr.startswith("reconciler: postgresql://ops@127.0.0.1:1/sched: cannot open the ledger: ")


def test_a_rescan_more_often_than_once_a_second_is_a_usage_error(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("run", "--dir", "schedules", "--rescan", "100ms", "--ledger", str(tmp_path / "l.db"))
    assert r.returncode == 64
    assert "--rescan 100ms: rescan at most once a second" in r.stderr
    assert not (tmp_path / "l.db").exists()  # refused before anything was opened


def test_a_rescan_and_a_grace_in_bare_seconds_are_accepted_as_documented(tmp_path: Path) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(GOOD)
    d = Daemon(sched, tmp_path, "--rescan", "30", "--grace", "5")  # the last --rescan wins
    try:
        d.wait_event("reconciler.started")
    finally:
        code = d.stop()
    assert code == 0, d.log_path.read_text()
    assert d.events("reconciler.stopping")[0]["grace"] == 5.0


def test_version_prints_the_installed_version(reconciler: Run) -> None:
    from importlib.metadata import version

    r = reconciler("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"reconciler {version('schedule-reconciler')}\n"


@pytest.mark.parametrize(("command", "choices"), [
    (["validate"], "text|json|github"), (["plan"], "text|json|markdown"), (["next"], "text|json"),
    (["history"], "text|json"), (["trigger"], "text|json"), (["run"], "text|json")])
def test_help_lists_the_allowed_values_of_a_format(reconciler: Run, command: list[str], choices: str) -> None:
    r = reconciler(*command, "--help", env={"COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    option = "--log-format" if command == ["run"] else "--format"
    (line,) = [line for line in r.stdout.splitlines() if f"{option} " in line]
    assert choices in line
    assert "<str>" not in line


def test_help_lists_the_run_states_that_status_accepts(reconciler: Run) -> None:
    from reconciler.core.policy import RUN_STATES

    assert tuple(cli_shape()["run_states"]) == RUN_STATES
    r = reconciler("history", "--help", env={"COLUMNS": "200"})
    (line,) = [line for line in r.stdout.splitlines() if "--status " in line]
    assert "<str>" not in line
    assert ", ".join(RUN_STATES) in line
    bad = reconciler("history", "--status", "succeded")
    assert bad.returncode == 64
    assert "'succeded' is not one of" in bad.stderr


def test_shell_completion_completes_commands_and_choices(reconciler: Run) -> None:
    command = reconciler(env={"_RECONCILER_COMPLETE": "complete_bash", "COMP_WORDS": "reconciler hist",
                              "COMP_CWORD": "1"})
    assert (command.returncode, command.stdout.split()) == (0, ["history"])
    choice = reconciler(env={"_RECONCILER_COMPLETE": "complete_bash", "COMP_WORDS": "reconciler plan --format m",
                             "COMP_CWORD": "3"})
    assert (choice.returncode, choice.stdout.split()) == (0, ["markdown"])
    script = reconciler("--show-completion", "bash")
    assert script.returncode == 0
    assert "complete -o default -F _reconciler_completion reconciler" in script.stdout


def test_start_up_imports_nothing_heavy_before_a_command_needs_it() -> None:
    code = ("import sys\nfrom reconciler.cli import main\nassert main(['--version']) == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & ({'yaml', 'jsonschema', 'fastjsonschema', "
            "'jsonschema_rs', 'apscheduler', 'starlette', 'httpx', 'cron_descriptor'} "
            "| (set() if 'coverage' in sys.modules else {'sqlite3'}))), "
            "sorted(m for m in sys.modules if m.startswith(('reconciler.core', 'reconciler.commands'))))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                       timeout=60, env=unmeasured())
    assert r.stdout.splitlines() == ["reconciler 0.1.0", "[] []"], r.stdout + r.stderr


def test_the_quick_start_says_where_the_dashboard_is_and_keeps_its_two_commands() -> None:
    listen = cli_shape()["commands"]["run"]["listen"]["default"]
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"<http://{listen}/>" in quick
    assert re.findall(r"```sh\n(.*)\n```", quick) == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/reconciler run --dir schedules",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"]


def test_next_marks_every_fire_time_of_a_suspended_schedule(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "off.yaml").write_text(GOOD.replace("name: good", "name: off") + "enabled: false\n")
    r = reconciler("next", "off", "--dir", str(tmp_path), "--after", "2026-01-01T00:00:00Z", "-n", "2")
    assert r.returncode == 0, r.stderr
    head, *times = r.stdout.splitlines()
    assert head == "At 02:00  [UTC]  (suspended: enabled: false; none of these will fire)"
    assert len(times) == 2
    assert all(t.endswith("  (suspended)") for t in times)
    j = reconciler("next", "off", "--dir", str(tmp_path), "--after", "2026-01-01T00:00:00Z", "-n", "1", "-f", "json")
    assert json.loads(j.stdout) == {"next": ["2026-01-01T02:00:00Z"], "suspended": True}


@pytest.mark.parametrize("command", ["next", "trigger", "history"])
def test_a_misspelt_schedule_name_gets_a_did_you_mean(reconciler: Run, tmp_path: Path, command: str) -> None:
    (tmp_path / "s.yaml").write_text(GOOD.replace("good", "nightly-backup") + "---\n" + GOOD)
    ledger = str(tmp_path / "l.db")
    assert reconciler("trigger", "nightly-backup", "--dir", str(tmp_path), "--ledger", ledger).returncode == 0
    where = ["--ledger", ledger] if command == "history" else ["--dir", str(tmp_path), "--ledger", ledger]
    if command == "next":
        where = ["--dir", str(tmp_path)]
    r = reconciler(command, "nightly-bakup", *where)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.endswith("nightly-bakup' in " + (f"{tmp_path}" if command != "history" else "the ledger")
                             + " (did you mean 'nightly-backup'?)\n")


def test_a_misspelt_time_zone_for_next_gets_a_did_you_mean(reconciler: Run) -> None:
    r = reconciler("next", "--cron", "0 2 * * *", "--timezone", "America/New_Yrok")
    assert r.returncode == 1
    assert r.stderr == "reconciler: unknown time zone 'America/New_Yrok' (did you mean 'America/New_York'?)\n"


def test_history_of_a_known_schedule_without_matching_runs_is_empty_not_an_error(
        reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(GOOD)
    ledger = str(tmp_path / "l.db")
    assert reconciler("trigger", "good", "--dir", str(tmp_path), "--ledger", ledger).returncode == 0
    r = reconciler("history", "good", "--status", "failed", "--ledger", ledger)
    assert (r.returncode, r.stdout.splitlines()[-1]) == (0, "no runs")


def test_trigger_prints_the_run_as_json_when_asked(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: hello\nschedule: {cron: '0 2 * * *'}\n"
                                     "run: {command: [/bin/sh, -c, 'echo hi; exit 3']}\n")
    r = reconciler("trigger", "hello", "--dir", str(tmp_path), "--ledger", str(tmp_path / "l.db"), "--format", "json")
    assert r.returncode == 1  # the run failed, as in text
    data = json.loads(r.stdout)
    assert {k: data[k] for k in ("id", "schedule", "trigger", "status", "exit_code", "output")} == {
        "id": 1, "schedule": "hello", "trigger": "manual", "status": "failed", "exit_code": 3, "output": "hi\n"}
    again = reconciler("history", "--run", "1", "--ledger", str(tmp_path / "l.db"), "--format", "json")
    assert json.loads(again.stdout) == data  # one shape for one run, whichever command prints it
