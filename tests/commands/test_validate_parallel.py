"""`validate` on a large tree: a forked helper shares the files; the output is the same."""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.commands import validate as command
from reconciler.core.loader import Loader

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def tree(root: Path) -> Path:
    root.mkdir()
    for i in range(40):
        name = "dup" if i in (3, 32) else f"job-{i:02d}"  # one name in each half: a set-level problem
        if i % 7 == 0:
            body = f"name: {name}\nschedule: {{cron: '61 * * * *'}}\nrun: {{command: [/bin/true]}}\n"
        elif i % 11 == 0:
            body = f"name: {name}\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\nnope: 1\n"
        else:
            body = (f"name: {name}\nschedule: {{every: 1m}}\nrun: {{command: [/bin/true]}}\n---\n"
                    f"name: {name}-b\nschedule: {{every: 2m}}\nrun: {{command: [/bin/true]}}\n")
        (root / f"f{i:02d}.yaml").write_text(body)
    (root / "empty.yaml").write_text("")
    (root / "z-last-day.yaml").write_text(
        "name: last-day\nschedule: {cron: '0 0 L * *'}\nrun: {command: [/bin/true]}\n")
    return root


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_tree_checked_with_a_helper_reports_exactly_what_one_process_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    root = tree(tmp_path / "schedules")
    alone, together = io.StringIO(), io.StringIO()
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 10**9)
    code_alone = command.validate([str(root)], fmt, alone, NOW)
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 1)
    code_together = command.validate([str(root)], fmt, together, NOW)
    assert (code_together, together.getvalue()) == (code_alone, alone.getvalue())
    assert "dup" in alone.getvalue()


def test_the_helper_refuses_the_cron_extensions_under_strict_cron_as_one_process_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "schedules")
    alone, together = io.StringIO(), io.StringIO()
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 10**9)
    command.validate([str(root)], "text", alone, NOW, strict_cron=True)
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 1)
    command.validate([str(root)], "text", together, NOW, strict_cron=True)
    assert together.getvalue() == alone.getvalue()
    assert "z-last-day.yaml" in together.getvalue()


def _spy_on_helpers(monkeypatch: pytest.MonkeyPatch) -> list[command._Helper]:
    """The helpers `validate` starts, as they start."""
    started: list[command._Helper] = []
    real = command._Helper.start

    def spy(*args: object) -> command._Helper | None:
        helper = real(*args)  # type: ignore[arg-type]
        if helper is not None:
            started.append(helper)
        return helper

    monkeypatch.setattr(command._Helper, "start", spy)
    return started


def test_the_helper_checks_the_files_it_claims_while_the_parent_is_busy(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if threading.active_count() > 1:
        pytest.skip("another thread runs in this test process: validate does not fork then")
    root = tree(tmp_path / "schedules")
    started = _spy_on_helpers(monkeypatch)
    real_one = command._load_one

    def slow_parent(*args: object) -> object:
        time.sleep(0.02)  # the parent's core is busy elsewhere: the helper claims more
        return real_one(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(command, "_CHUNK", 2)
    monkeypatch.setattr(command, "_load_one", slow_parent)
    result = command.load([str(root)], NOW, parallel_min=1)
    (helper,) = started
    assert helper.proc.exitcode == 0
    assert len(helper.checked) > len(helper.files) // 2  # of 42, while the parent took 20 ms a file
    expected = Loader().load_paths([str(root)], now=NOW, build_records=False)
    assert result == expected


def test_the_files_a_helper_claimed_before_it_died_are_checked_by_the_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if threading.active_count() > 1:
        pytest.skip("another thread runs in this test process: validate does not fork then")
    root = tree(tmp_path / "schedules")
    started = _spy_on_helpers(monkeypatch)
    real_one = command._load_one

    def dies(conn: object, loader: object, files: object, work: command._Work, *rest: object) -> None:
        list(itertools.islice(work.claims(), 10))  # two chunks taken, never answered for
        os._exit(3)

    def slow_parent(*args: object) -> object:
        time.sleep(0.01)  # so that the helper claims its chunks before the parent has taken all
        return real_one(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(command, "_CHUNK", 5)
    monkeypatch.setattr(command, "_helper_main", dies)
    monkeypatch.setattr(command, "_load_one", slow_parent)
    result = command.load([str(root)], NOW, parallel_min=1)
    (helper,) = started
    assert (helper.proc.exitcode, helper.checked) == (3, [])
    expected = Loader().load_paths([str(root)], now=NOW, build_records=False)
    assert result == expected
    assert len(result.files) == 42


def test_the_helper_reports_unknown_calendars_and_windows_in_its_half_as_one_process_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "schedules")
    (root / "zz-rules.yaml").write_text(
        "name: ruled\nschedule: {every: 1m}\nrun: {command: [/bin/true]}\n"
        "calendar: {exclude: [no-such-calendar]}\nwindows: [no-such-window]\n")
    alone, together = io.StringIO(), io.StringIO()
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 10**9)
    command.validate([str(root)], "text", alone, NOW)
    monkeypatch.setattr(command, "PARALLEL_MIN_FILES", 1)
    command.validate([str(root)], "text", together, NOW)
    assert "no-such-calendar" in alone.getvalue()
    assert "no-such-window" in alone.getvalue()
    assert together.getvalue() == alone.getvalue()
