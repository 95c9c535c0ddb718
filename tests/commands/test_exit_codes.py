"""Every exit code of every command, run for real, and the README's command table that documents them."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_shape import cli_shape
from tests.conftest import ROOT
from tests.harness import Daemon, commit_all, init_repo

Run = Callable[..., subprocess.CompletedProcess[str]]
Outcome = tuple[int, str]  # exit code, and what was printed (for the failure message)
GOOD = "name: good\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true]}\n"
BAD = "name: bad\nschedule: {cron: '0 2 * *'}\nrun: {command: [/bin/true]}\n"
FAILING = "name: fails\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/false]}\n"


def schedules(tmp: Path, *texts: str) -> Path:
    d = tmp / "schedules"
    d.mkdir(exist_ok=True)
    for i, text in enumerate(texts):
        (d / f"s{i}.yaml").write_text(text)
    return d


def done(r: subprocess.CompletedProcess[str]) -> Outcome:
    return r.returncode, r.stdout + r.stderr


def not_a_ledger(tmp: Path) -> str:
    bad = tmp / "not-a-ledger.db"
    bad.write_text("not the bytes of a SQLite database\n" * 20)
    return str(bad)


def plan_without_changes(tmp: Path, run: Run) -> Outcome:
    repo = tmp / "repo"
    init_repo(repo)
    schedules(repo, GOOD)
    commit_all(repo, "base")
    return done(run("plan", "--dir", "schedules", "--base", "HEAD", cwd=repo))


def run_stopped_cleanly(tmp: Path, run: Run) -> Outcome:
    d = Daemon(schedules(tmp, GOOD), tmp)
    try:
        d.wait_event("reconciler.started")
    finally:
        code = d.stop(signal.SIGTERM)
    return code, d.log_path.read_text()


def trigger(tmp: Path, run: Run, text: str, name: str) -> Outcome:
    return done(run("trigger", name, "--dir", str(schedules(tmp, text)), "--ledger", str(tmp / "l.db")))


def history_after_a_run_then(tmp: Path, run: Run, command: str) -> Outcome:
    assert trigger(tmp, run, FAILING, "fails")[0] == 1
    return done(run(command, "--ledger", str(tmp / "l.db")))


def history_after_a_run(tmp: Path, run: Run, *args: str) -> Outcome:
    assert trigger(tmp, run, FAILING, "fails")[0] == 1  # a failed run is history like any other
    return done(run("history", *args, "--ledger", str(tmp / "l.db")))


def applied_ledger(tmp: Path, text: str = GOOD) -> tuple[str, str]:
    """A schedules directory, and a ledger whose last revision holds it (as a daemon leaves one)."""
    from datetime import UTC, datetime

    from reconciler.core.loader import Loader
    from reconciler.ledger.sqlite import SqliteLedger

    directory = schedules(tmp, text)
    loaded = Loader().load_paths([directory]).schedules
    ledger = SqliteLedger(tmp / "l.db")
    ledger.record_revision("r1", datetime.now(UTC), {}, {s.name: s.spec for s in loaded},
                           {s.name: s.spec_hash for s in loaded})
    ledger.close()
    return str(directory), str(tmp / "l.db")


def backfill(tmp: Path, run: Run, text: str, name: str, end: str = "2026-01-02T00:00:00Z") -> Outcome:
    directory, ledger = applied_ledger(tmp, text)
    return done(run("backfill", name, "--from", "2026-01-01T00:00:00Z", "--to", end, "--dir", directory,
                    "--ledger", ledger))


def init_over_existing_files(tmp: Path, run: Run) -> Outcome:
    (tmp / "README.md").write_text("mine\n")
    return done(run("init", str(tmp)))


def ledger_copy(tmp: Path, run: Run, *, into_used: bool = False) -> Outcome:
    assert trigger(tmp, run, GOOD, "good")[0] == 0  # l.db: a ledger with a run
    if into_used:
        return done(run("ledger", "copy", str(tmp / "l.db"), str(_used(tmp, run))))
    return done(run("ledger", "copy", str(tmp / "l.db"), str(tmp / "copy.db")))


def _used(tmp: Path, run: Run) -> Path:
    other = tmp / "other"
    other.mkdir()
    assert done(run("trigger", "good", "--dir", str(schedules(other, GOOD)), "--ledger", str(other / "l.db")))[0] == 0
    return other / "l.db"


# (command, exit code) -> how to get it. The README's table must list exactly these codes per command.
CASES: dict[str, tuple[str, int, Callable[[Path, Run], Outcome]]] = {
    "validate-valid": ("validate", 0, lambda t, r: done(r("validate", str(schedules(t, GOOD))))),
    "validate-problems": ("validate", 1, lambda t, r: done(r("validate", str(schedules(t, BAD))))),
    "validate-missing-path": ("validate", 64, lambda t, r: done(r("validate", str(t / "missing")))),
    "validate-unknown-format": ("validate", 64, lambda t, r: done(r("validate", "-f", "xml", str(t)))),
    "schema": ("schema", 0, lambda t, r: done(r("schema"))),
    "schema-cannot-write": ("schema", 1, lambda t, r: done(r("schema", "--output", str(t)))),  # a directory
    "schema-unknown-option": ("schema", 64, lambda t, r: done(r("schema", "--outptu", str(t / "s.json")))),
    "next-cron": ("next", 0, lambda t, r: done(r("next", "--cron", "0 2 * * *"))),
    "next-invalid-expression": ("next", 1, lambda t, r: done(r("next", "--cron", "61 * * * *"))),
    "next-unknown-name": ("next", 1, lambda t, r: done(r("next", "nope", "--dir", str(schedules(t, GOOD))))),
    "next-neither-name-nor-cron": ("next", 64, lambda t, r: done(r("next"))),
    "plan-no-changes": ("plan", 0, plan_without_changes),
    "plan-problems": ("plan", 1, lambda t, r: done(r("plan", "--dir", str(schedules(t, BAD))))),
    "plan-changes": ("plan", 2, lambda t, r: done(r("plan", "--dir", str(schedules(t, GOOD))))),
    "plan-missing-ledger": ("plan", 64, lambda t, r: done(
        r("plan", "--dir", str(schedules(t, GOOD)), "--ledger", str(t / "missing.db")))),
    "plan-missing-ledger-with-base": ("plan", 64, lambda t, r: done(
        r("plan", "--dir", str(schedules(t, GOOD)), "--base", "HEAD", "--ledger", str(t / "missing.db")))),
    "plan-unknown-format": ("plan", 64, lambda t, r: done(r("plan", "--dir", str(schedules(t, GOOD)), "-f", "x"))),
    "run-clean-stop": ("run", 0, run_stopped_cleanly),
    "run-bad-ledger": ("run", 1, lambda t, r: done(
        r("run", "--dir", str(schedules(t, GOOD)), "--ledger", not_a_ledger(t), "--listen", "none"))),
    "run-rescan-too-often": ("run", 64, lambda t, r: done(
        r("run", "--dir", str(schedules(t, GOOD)), "--rescan", "100ms", "--ledger", str(t / "l.db")))),
    "history-runs": ("history", 0, lambda t, r: history_after_a_run(t, r)),
    "history-no-such-run": ("history", 1, lambda t, r: history_after_a_run(t, r, "--run", "9999")),
    "history-unknown-name": ("history", 1, lambda t, r: history_after_a_run(t, r, "fials")),
    "history-missing-ledger": ("history", 64, lambda t, r: done(r("history", "--ledger", str(t / "missing.db")))),
    "history-unknown-status": ("history", 64, lambda t, r: done(r("history", "--status", "bogus"))),
    "trigger-succeeded": ("trigger", 0, lambda t, r: trigger(t, r, GOOD, "good")),
    "trigger-failed": ("trigger", 1, lambda t, r: trigger(t, r, FAILING, "fails")),
    "trigger-unknown-name": ("trigger", 1, lambda t, r: trigger(t, r, GOOD, "nope")),
    "trigger-missing-dir": ("trigger", 64, lambda t, r: done(r("trigger", "x", "--dir", str(t / "missing")))),
    "show-found": ("show", 0, lambda t, r: done(r("show", "good", "--dir", str(schedules(t, GOOD)), "--effective"))),
    "show-unknown-name": ("show", 1, lambda t, r: done(r("show", "nope", "--dir", str(schedules(t, GOOD))))),
    "show-missing-dir": ("show", 64, lambda t, r: done(r("show", "x", "--dir", str(t / "missing")))),
    "status-of-a-ledger": ("status", 0, lambda t, r: history_after_a_run_then(t, r, "status")),
    "status-missing-ledger": ("status", 64, lambda t, r: done(r("status", "--ledger", str(t / "missing.db")))),
    "status-server-unreachable": ("status", 1, lambda t, r: done(r("status", "--server", "http://127.0.0.1:9"))),
    "audit-nothing-recorded": ("audit", 0, lambda t, r: history_after_a_run(t, r) and done(
        r("audit", "--ledger", str(t / "l.db")))),
    "audit-unknown-name": ("audit", 1, lambda t, r: history_after_a_run(t, r) and done(
        r("audit", "fials", "--ledger", str(t / "l.db")))),
    "audit-missing-ledger": ("audit", 64, lambda t, r: done(r("audit", "--ledger", str(t / "missing.db")))),
    "pause-paused": ("pause", 0, lambda t, r: done(r("pause", "good", "--ledger", applied_ledger(t)[1]))),
    "pause-unknown-name": ("pause", 1, lambda t, r: done(r("pause", "nope", "--ledger", applied_ledger(t)[1]))),
    "pause-both-until-and-for": ("pause", 64, lambda t, r: done(r(
        "pause", "good", "--for", "1h", "--until", "2099-01-01T00:00:00Z", "--ledger", applied_ledger(t)[1]))),
    "resume-resumed": ("resume", 0, lambda t, r: done(r("resume", "good", "--ledger", applied_ledger(t)[1]))),
    "resume-unknown-name": ("resume", 1, lambda t, r: done(r("resume", "nope", "--ledger", applied_ledger(t)[1]))),
    "resume-missing-ledger": ("resume", 64, lambda t, r: done(r("resume", "good", "--ledger", str(t / "no.db")))),
    "activity-listed": ("activity", 0, lambda t, r: done(r("activity", "--ledger", applied_ledger(t)[1]))),
    "activity-missing-ledger": ("activity", 64, lambda t, r: done(r("activity", "--ledger", str(t / "no.db")))),
    "backfill-succeeded": ("backfill", 0, lambda t, r: backfill(t, r, GOOD, "good")),
    "backfill-failed": ("backfill", 1, lambda t, r: backfill(t, r, FAILING, "fails")),
    "backfill-future": ("backfill", 64, lambda t, r: backfill(t, r, GOOD, "good", "2999-01-01T00:00:00Z")),
    "init-created": ("init", 0, lambda t, r: done(r("init", str(t / "repo")))),
    "init-would-overwrite": ("init", 1, init_over_existing_files),
    "init-unknown-option": ("init", 64, lambda t, r: done(r("init", "--overwrite", str(t)))),
    "ledger-copy": ("ledger copy", 0, ledger_copy),
    "ledger-copy-into-a-used-ledger": ("ledger copy", 1, lambda t, r: ledger_copy(t, r, into_used=True)),
    "ledger-copy-missing-source": ("ledger copy", 64, lambda t, r: done(
        r("ledger", "copy", str(t / "missing.db"), str(t / "copy.db")))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_command_exits_with_the_documented_code(case: str, tmp_path: Path, reconciler: Run) -> None:
    _, expected, how = CASES[case]
    code, output = how(tmp_path, reconciler)
    assert code == expected, output
    assert "Traceback" not in output


@pytest.mark.parametrize("command", ["validate", "schema", "next", "plan", "run", "history", "trigger", "audit",
                                     "init", "status", "pause", "resume", "backfill",
                                     "show", "activity"])
def test_an_unknown_option_is_a_usage_error_on_every_command(command: str, reconciler: Run) -> None:
    r = reconciler(command, "--no-such-option")
    assert r.returncode == 64, r.stdout + r.stderr
    assert "No such option" in r.stderr
    assert "--no-such-option" in r.stderr


@pytest.mark.parametrize("args", [[], ["no-such-command"]])
def test_no_command_or_an_unknown_one_is_a_usage_error(args: list[str], reconciler: Run) -> None:
    r = reconciler(*args)
    assert r.returncode == 64, r.stdout + r.stderr
    assert "Usage: reconciler" in r.stdout + r.stderr


def test_a_plan_with_changes_is_never_confused_with_a_usage_error(reconciler: Run, tmp_path: Path) -> None:
    sched = schedules(tmp_path, GOOD)
    changes = reconciler("plan", "--dir", str(sched))
    missing_ledger = reconciler("plan", "--dir", str(sched), "--ledger", str(tmp_path / "missing.db"))
    assert (changes.returncode, missing_ledger.returncode) == (2, 64)
    assert missing_ledger.stderr == f"reconciler: {tmp_path}/missing.db: no such ledger\n"


def readme_table() -> dict[str, tuple[str, str]]:
    """command -> (its synopsis cell, its exit-codes cell), from the README's command table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`reconciler "):
            # The command's words: `ledger copy`, up to its first argument or option.
            words = [w.rstrip("`") for w in cells[0].split()[1:]]
            name = " ".join(itertools.takewhile(lambda w: re.fullmatch(r"[a-z]+", w), words))
            rows[name] = (cells[0], cells[2])
    return rows


def test_the_readme_command_table_lists_every_command_of_the_cli(reconciler: Run) -> None:
    commands = set(cli_shape()["commands"])
    assert set(readme_table()) == commands
    help_text = reconciler("--help").stdout
    assert all(re.search(rf"\b{c.split()[0]}\b", help_text) for c in commands)  # a group lists its own


def test_the_readme_command_table_lists_the_options_that_help_shows() -> None:
    commands = cli_shape()["commands"]
    for name, (synopsis, _) in readme_table().items():
        # each option by its first long name (`--timezone`, not its alias `--tz`)
        options = {p["long"] for p in commands[name].values() if p["long"]}
        documented = set(re.findall(r"--[a-z][a-z-]*", synopsis))
        assert documented == options, name


def test_the_readme_lists_exactly_the_exit_codes_that_are_tested() -> None:
    tested: dict[str, set[int]] = {}
    for command, code, _ in CASES.values():
        tested.setdefault(command, set()).add(code)
    documented = {name: {int(n) for n in re.findall(r"\b\d+\b", codes)} for name, (_, codes) in readme_table().items()}
    assert documented == tested
