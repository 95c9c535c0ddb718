"""`reconciler activity`, and the actions of `reconciler pause` and `resume` it lists, through the
real command: who is the OS user."""

from __future__ import annotations

import getpass
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.commands.test_pause_cli import applied

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_pauses_and_resumes_by_command_are_listed_as_the_os_users_activity(reconciler: Run, tmp_path: Path) -> None:
    _, ledger = applied(tmp_path, "a", "b")
    assert reconciler("pause", "a", "--reason", "<b>vendor</b>", "--for", "1h", "--ledger", str(ledger)).returncode == 0
    assert reconciler("resume", "a", "b", "--ledger", str(ledger)).returncode == 0
    listed = json.loads(reconciler("activity", "--format", "json", "--ledger", str(ledger)).stdout)
    me = getpass.getuser()
    assert [(x["who"], x["action"], x["targets"], x["reason"]) for x in listed] == [
        (me, "resume", ["a", "b"], ""), (me, "pause", ["a"], "<b>vendor</b>")]
    assert listed[0]["details"] == {"were_paused": ["a"]}
    only_b = json.loads(reconciler("activity", "b", "--format", "json", "--ledger", str(ledger)).stdout)
    assert [x["action"] for x in only_b] == ["resume"]
    text = reconciler("activity", "--limit", "1", "--ledger", str(ledger)).stdout
    assert text.count("\n") == 1
    assert f"  {me}  resume a, b" in text


def test_activity_of_an_empty_or_missing_ledger(reconciler: Run, tmp_path: Path) -> None:
    _, ledger = applied(tmp_path, "a")
    assert reconciler("activity", "--ledger", str(ledger)).stdout == "no action recorded\n"
    assert reconciler("activity", "--ledger", str(tmp_path / "nope.db")).returncode == 64
