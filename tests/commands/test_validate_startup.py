"""`reconciler validate PATH...` starts without the command-line app, and says exactly what the app says."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.commands.test_cli import unmeasured
from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]

GOOD = "name: good\nschedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"
BAD = "name: Bad_Name\nschedule: {every: 1m, cron: '61 * * * *'}\nrun: {command: [/bin/true]}\nnope: 1\n"
# What `validate` of a valid tree must not import: the app (typer, click), the daemon's libraries,
# croniter and cron_descriptor (tests and `next` only), jsonschema (only for rejected documents),
# and multiprocessing (only for trees large enough for a helper).
HEAVY = ("typer", "click", "apscheduler", "starlette", "uvicorn", "httpx", "watchfiles", "croniter",
         "cron_descriptor", "jsonschema", "multiprocessing", "reconciler.cli.full", "reconciler.service",
         "reconciler.engine", "reconciler.ledger")


def test_validate_with_only_paths_imports_neither_the_app_nor_the_daemon(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    # Only what `validate` imports counts: under `--cov`, coverage's startup hook has already imported
    # coverage itself (and with it multiprocessing and sqlite3) before the first line runs.
    heavy = (*HEAVY, "sqlite3")
    code = ("import sys\nstartup = set(sys.modules)\nfrom reconciler.cli import main\n"
            f"code = main(['validate', {str(tmp_path)!r}])\n"
            f"print(code, sorted(m for m in set(sys.modules) - startup "
            f"if m in {heavy!r} or m.split('.')[0] in {heavy!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                       timeout=60, env=unmeasured())
    assert r.stdout.splitlines() == ["1 file, 1 schedule: valid", "0 []"], r.stdout + r.stderr


@pytest.mark.parametrize("case", ["valid", "problems", "missing", "empty", "no-arguments"])
def test_validate_with_only_paths_prints_and_exits_as_the_app_does(reconciler: Run, tmp_path: Path,
                                                                   case: str) -> None:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "good.yaml").write_text(GOOD)
    if case == "problems":
        (tmp_path / "schedules" / "bad.yaml").write_text(BAD)
    if case == "empty":
        (tmp_path / "schedules" / "good.yaml").unlink()
    paths = {"missing": ["schedules", "no-such-dir"], "no-arguments": []}.get(case, ["schedules"])
    direct = reconciler("validate", *paths, cwd=tmp_path)
    through_app = reconciler("validate", "--format", "text", *paths, cwd=tmp_path)  # an option: the app parses
    assert (direct.returncode, direct.stdout, direct.stderr) == (
        through_app.returncode, through_app.stdout, through_app.stderr)
    assert direct.returncode == {"valid": 0, "problems": 1, "missing": 64, "empty": 1, "no-arguments": 0}[case]


def test_the_strict_cron_variable_still_reaches_a_validate_with_only_paths(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "last.yaml").write_text("name: last\nschedule: {cron: '0 0 L * *'}\nrun: {command: [/bin/true]}\n")
    assert reconciler("validate", str(tmp_path)).returncode == 0
    strict = reconciler("validate", str(tmp_path), env={"RECONCILER_STRICT_CRON": "1"})
    assert strict.returncode == 1, strict.stdout
    assert "last.yaml" in strict.stdout


@pytest.mark.parametrize(("argv", "env", "direct"), [
    (["validate"], {}, []),
    (["validate", "a", "b.yaml"], {}, ["a", "b.yaml"]),
    (["validate", "--strict-cron", "a"], {}, None),
    (["validate", "a", "-f", "json"], {}, None),
    (["validate", "--", "-a"], {}, None),
    (["validate", "a"], {"RECONCILER_DEBUG": "1"}, None),
    (["validate", "a"], {"RECONCILER_STRICT_CRON": "0"}, None),
    (["validate", "a"], {"_RECONCILER_COMPLETE": "complete_bash"}, None),
    (["plan", "a"], {}, None),
    ([], {}, None),
])
def test_only_validate_with_plain_paths_and_none_of_the_apps_variables_skips_the_app(
        monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], direct: list[str] | None) -> None:
    from reconciler.cli import plain_validate

    for name in ("RECONCILER_DEBUG", "RECONCILER_STRICT_CRON", "_RECONCILER_COMPLETE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert plain_validate(argv) == direct
