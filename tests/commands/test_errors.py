"""The one handler of what a command raises (reconciler.errors, behind reconciler.cli.main), in-process."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core.loader import PathError
from reconciler.errors import FatalError, UsageError, exit_code_of
from reconciler.gitrepo import GitError
from reconciler.ledger.base import LedgerError, LedgerFull
from reconciler.service.app import ListenError

# An old typer on a new click warns on import and on use; that is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:.*will be removed in Click:DeprecationWarning")


@pytest.fixture(autouse=True)
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where crash logs go (the temporary directory), empty; and typer's excepthook undone."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    monkeypatch.delenv("RECONCILER_DEBUG", raising=False)
    hook = sys.excepthook
    yield where
    sys.excepthook = hook


def main_raising(error: BaseException, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`reconciler [args] validate` where the command raises `error`."""
    import reconciler.commands.validate
    from reconciler.cli import main

    def validate(*_: object, **__: object) -> int:
        raise error

    monkeypatch.setattr(reconciler.commands.validate, "validate", validate)
    return main([*args, "validate", "schedules"])


def test_an_unexpected_error_prints_one_line_naming_the_file_that_holds_its_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], crash_dir: Path) -> None:
    code = main_raising(KeyError("token=s3cr3t"), monkeypatch)
    err = capsys.readouterr().err
    assert code == 1
    [log] = list(crash_dir.iterdir())
    assert err == f"reconciler: internal error (KeyError), please report it as a bug; its traceback is in {log}\n"
    text = log.read_text()
    assert "Traceback" in text
    assert "KeyError: 'token=s3cr3t'" in text
    assert text.startswith("reconciler 0.1.0, Python ")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600  # the message may quote a secret


def test_debug_prints_the_traceback_instead_and_saves_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], crash_dir: Path) -> None:
    code = main_raising(RuntimeError("boom"), monkeypatch, "--debug")
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("RuntimeError: boom\nreconciler: internal error (RuntimeError), please report it as a bug\n")
    assert list(crash_dir.iterdir()) == []


def test_reconciler_debug_1_in_the_environment_is_the_same_as_debug(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], crash_dir: Path) -> None:
    monkeypatch.setenv("RECONCILER_DEBUG", "1")
    assert main_raising(RuntimeError("boom"), monkeypatch) == 1
    assert "Traceback (most recent call last):" in capsys.readouterr().err
    assert list(crash_dir.iterdir()) == []


def test_without_a_writable_temporary_directory_the_line_says_how_to_see_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert main_raising(RuntimeError("boom"), monkeypatch) == 1
    assert capsys.readouterr().err == ("reconciler: internal error (RuntimeError), please report it as a bug "
                                       "(RECONCILER_DEBUG=1 or --debug shows its traceback)\n")


@pytest.mark.parametrize(("error", "code"), [
    (FatalError("no run with id 7"), 1),
    (UsageError("--limit must be at least 1"), 64),
    (PathError("missing: no such file or directory"), 64),
    (ListenError("--listen 127.0.0.1:1: Permission denied"), 64),
    (LedgerError("l.db: cannot open the ledger: file is not a database"), 1),
    (LedgerFull("database or disk is full"), 1),
    (GitError("--base nope: no commit 'nope' in the repository at /r"), 1),
])
def test_each_layers_own_error_ends_the_command_with_its_code_and_its_message_alone(
        error: Exception, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        crash_dir: Path) -> None:
    assert main_raising(error, monkeypatch) == code
    assert capsys.readouterr().err == f"reconciler: {error}\n"
    assert list(crash_dir.iterdir()) == []


def test_debug_also_shows_where_an_expected_error_came_from(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_raising(LedgerError("l.db: cannot open the ledger"), monkeypatch, "--debug") == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("reconciler: l.db: cannot open the ledger\n")


def test_ctrl_c_in_a_command_exits_130_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_raising(KeyboardInterrupt(), monkeypatch) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Aborted" not in err


def test_a_bug_is_not_mistaken_for_an_error_the_user_can_act_on() -> None:
    assert exit_code_of(RuntimeError("boom")) is None
    assert exit_code_of(ValueError("boom")) is None


def test_no_layer_below_the_command_line_derives_its_errors_from_the_command_lines() -> None:
    assert not any(issubclass(e, FatalError) for e in (PathError, LedgerError, GitError, ListenError))
