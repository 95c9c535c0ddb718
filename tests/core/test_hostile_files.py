"""Hostile file names and files, through the real `reconciler` command and daemon: nothing they
hold can stop the process, forge a line of output or leak what lies outside the directory."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.harness import Daemon

Run = Callable[..., subprocess.CompletedProcess[str]]
GOOD = "name: {name}\nschedule: {{cron: '0 2 * * *'}}\nrun: {{command: [/bin/true]}}\n"
BAD = "name: bad\nschedule: {cron: '0 2 * *'}\nrun: {command: [/bin/true]}\n"


def test_a_file_name_with_a_newline_cannot_forge_a_problem_line(reconciler: Run, tmp_path: Path) -> None:
    (tmp_path / "a.yaml\nforged.yaml:1:1: $: all good.yaml").write_text(BAD)
    r = reconciler("validate", str(tmp_path))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines == [f"{tmp_path}/a.yaml\\nforged.yaml:1:1: $: all good.yaml:2:18: $.schedule.cron: "
                     "4 fields given; cron has five (minute hour day-of-month month day-of-week)",
                     "1 file, 0 schedules: 1 error in 1 file"]
    r = reconciler("validate", "--format", "github", str(tmp_path))
    assert len(r.stdout.splitlines()) == 2
    assert r.stdout.startswith(f"::error file={tmp_path}/a.yaml\\nforged.yaml%3A1%3A1%3A $%3A all good.yaml,line=2,")


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_a_file_name_that_is_not_utf8_is_shown_escaped_on_a_strict_utf8_stdout(
        reconciler: Run, tmp_path: Path, fmt: str) -> None:
    os.mkdir(os.fsencode(tmp_path / "d"))
    with open(os.fsencode(tmp_path / "d") + b"/bad\xff.yaml", "w") as fh:
        fh.write(BAD)
    with open(os.fsencode(tmp_path / "d") + b"/good\xfe.yaml", "w") as fh:
        fh.write(GOOD.format(name="good"))
    r = reconciler("validate", "--format", fmt, str(tmp_path / "d"), env={"PYTHONIOENCODING": "utf-8:strict"})
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    if fmt == "json":
        assert [p["path"] for p in json.loads(r.stdout)["problems"]] == [f"{tmp_path}/d/bad\\xff.yaml"]
    else:
        assert f"{tmp_path}/d/bad\\xff.yaml" in r.stdout


def test_the_daemon_applies_and_serves_a_valid_file_whose_name_is_not_utf8(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    with open(os.fsencode(sched) + b"/caf\xe9.yaml", "w") as fh:
        fh.write(GOOD.format(name="latin1"))
    d = Daemon(sched, tmp_path)
    started.append(d)
    applied = d.wait_event("revision.applied")
    assert applied["add"] == 1, applied
    base = f"http://{d.wait_event('http.listening')['address']}"
    got = httpx.get(f"{base}/api/v1/schedules/latin1", timeout=10)
    assert got.status_code == 200
    assert got.json()["source"] == f"{sched}/caf\\xe9.yaml:1"
    # A problem in such a file is reported, and the status that shows it still answers.
    with open(os.fsencode(sched) + b"/bad\xff.yaml", "w") as fh:
        fh.write(BAD)
    d.wait_event("revision.rejected")
    status = httpx.get(f"{base}/api/v1/status", timeout=10)
    assert status.status_code == 200
    assert [p["path"] for p in status.json()["attempted"]["problems"]] == [f"{sched}/bad\\xff.yaml"]
    assert d.proc.poll() is None
    assert d.stop() == 0


SECRET = "s3cr3t-t0ken-" + "q7Zk" * 10  # recognisable, and longer than any excerpt


def test_a_secret_behind_a_link_out_of_the_tree_is_echoed_nowhere(
        reconciler: Run, tmp_path: Path, started: list[Daemon]) -> None:
    token = tmp_path / "run-secrets" / "token"
    token.parent.mkdir()
    token.write_text(SECRET + "\n")  # one bare scalar, as a service account token is
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(GOOD.format(name="a"))
    (sched / "out.yaml").symlink_to(token)
    (sched / "pasted.yaml").write_text(SECRET + "\n")  # inside the tree: read, and named by its kind only
    for fmt in ("text", "json", "github"):
        r = reconciler("validate", "--format", fmt, str(sched))
        assert r.returncode == 1, r.stdout + r.stderr
        assert "out.yaml" in r.stdout
        assert "pasted.yaml" in r.stdout
        assert SECRET[:25] not in r.stdout + r.stderr

    d = Daemon(sched, tmp_path)
    started.append(d)
    rejected = d.wait_event("revision.rejected")
    assert rejected["problems"] == 2
    base = f"http://{d.wait_event('http.listening')['address']}"
    status = httpx.get(f"{base}/api/v1/status", timeout=10)
    assert sorted(p["path"] for p in status.json()["attempted"]["problems"]) == [
        f"{sched}/out.yaml", f"{sched}/pasted.yaml"]
    overview = httpx.get(f"{base}/api/v1/overview", timeout=10)
    # A link that appears while the daemon runs (an incremental read) is refused the same way.
    (sched / "out.yaml").unlink()
    (sched / "pasted.yaml").unlink()
    d.wait_event("revision.applied")
    (sched / "later.yaml").symlink_to(token)
    d.wait_event("revision.rejected", problems=1)
    later = httpx.get(f"{base}/api/v1/status", timeout=10)
    assert [p["path"] for p in later.json()["attempted"]["problems"]] == [f"{sched}/later.yaml"]
    assert d.stop() == 0
    for text in (status.text, overview.text, later.text, d.log_path.read_text()):
        assert SECRET[:25] not in text


def test_the_daemon_logs_a_skipped_fifo_once_naming_it(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(GOOD.format(name="a"))
    os.mkfifo(sched / "pipe.yaml")
    d = Daemon(sched, tmp_path)
    started.append(d)
    first = d.wait_event("revision.warning")
    assert first["problem"] == f"{sched}/pipe.yaml:1:1: $: warning: a FIFO (named pipe), not a regular file: skipped"
    d.wait_event("revision.applied")
    os.mkfifo(sched / "second.yml")
    d.wait_event("revision.warning", problem=f"{sched}/second.yml:1:1: $: warning: a FIFO (named pipe), "
                                            "not a regular file: skipped")
    assert [e["problem"] for e in d.events("revision.warning")].count(first["problem"]) == 1
    assert d.stop() == 0
