"""Colour in `validate` and `history`: on a terminal only, never when piped, never with NO_COLOR."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]
EXE = str(Path(sys.executable).with_name("reconciler"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"
BAD = "name: bad\nschedule: {cron: '0 2 * *'}\nrun: {command: [/bin/true]}\n"
PAST = "name: past\nschedule: {at: '2001-01-01T00:00:00Z'}\nrun: {command: [/bin/true]}\n"


def on_a_terminal(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run `reconciler` with its stdout on a pseudo-terminal; its exit code and what it printed there."""
    master, slave = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    proc = subprocess.Popen([EXE, *args], stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            env={**base, "TERM": "xterm", **(env or {})})
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = proc.wait(timeout=10)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "past.yaml").write_text(PAST)
    return tmp_path


def test_validate_colours_errors_red_warnings_yellow_on_a_terminal(tree: Path, reconciler: Run) -> None:
    code, out = on_a_terminal("validate", str(tree))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{RED}{tree}/bad.yaml:2:")
    assert lines[1].startswith(f"{YELLOW}{tree}/past.yaml:")
    assert lines[-1].startswith(RED)
    assert ANSI.sub("", out) == reconciler("validate", str(tree)).stdout  # the same text, only coloured


def test_a_valid_summary_is_green_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(BAD.replace("'0 2 * *'", "'0 2 * * *'"))
    code, out = on_a_terminal("validate", str(tmp_path))
    assert (code, out) == (0, f"{GREEN}1 file, 1 schedule: valid\x1b[0m\n")


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_when_no_color_is_set_or_the_terminal_is_dumb(tree: Path, env: dict[str, str]) -> None:
    code, out = on_a_terminal("validate", str(tree), env=env)
    assert code == 1
    assert "\x1b[" not in out
    assert "bad.yaml:2:" in out


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_machine_formats_are_never_coloured(tree: Path, fmt: str) -> None:
    code, out = on_a_terminal("validate", "--format", fmt, str(tree))
    assert code == 1
    assert "\x1b[" not in out


def test_nothing_is_coloured_when_piped(tree: Path, reconciler: Run) -> None:
    r = reconciler("validate", str(tree))
    assert r.returncode == 1
    assert "\x1b[" not in r.stdout


def test_history_colours_the_status_on_a_terminal_and_keeps_the_columns(tmp_path: Path, reconciler: Run) -> None:
    (tmp_path / "s.yaml").write_text("name: ok\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true]}\n---\n"
                                     "name: ko\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/false]}\n")
    ledger = str(tmp_path / "l.db")
    for name in ("ok", "ko"):
        reconciler("trigger", name, "--dir", str(tmp_path), "--ledger", ledger)
    code, out = on_a_terminal("history", "--ledger", ledger)
    assert code == 0
    piped = reconciler("history", "--ledger", ledger).stdout
    assert "\x1b[" not in piped
    assert ANSI.sub("", out) == piped  # colour never moves a column
    assert f"{RED}failed\x1b[0m" in out
    assert f"{GREEN}succeeded\x1b[0m" in out
