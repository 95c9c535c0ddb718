"""Real `reconciler` processes on a real PostgreSQL ledger, named by --ledger or RECONCILER_LEDGER."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from reconciler.ledger.base import RunRecord
from reconciler.ledger.postgres import PostgresLedger
from tests.harness import EXE, Daemon, lines, wait_for
from tests.pgserver import PgServer

Run = Callable[..., subprocess.CompletedProcess[str]]


class UrlDaemon(Daemon):
    """`reconciler run` on a PostgreSQL ledger: given by --ledger, or by RECONCILER_LEDGER alone."""

    def __init__(self, directory: Path, workdir: Path, url: str, *, via_env: bool = False) -> None:
        self.log_path = workdir / f"daemon-{time.monotonic_ns()}.log"
        self.ledger = workdir / "no-sqlite-ledger"
        self._log = self.log_path.open("w")
        argv = [EXE, "run", "--dir", str(directory), "--log-format", "json", "--rescan", "2s",
                "--listen", "127.0.0.1:0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if via_env:
            env["RECONCILER_LEDGER"] = url
        else:
            argv += ["--ledger", url]
            env.pop("RECONCILER_LEDGER", None)
        self.proc = subprocess.Popen(argv, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, env=env)


def runs_of(url: str, name: str) -> list[RunRecord]:
    led = PostgresLedger(url)
    try:
        return led.runs(name, limit=10_000)[::-1]
    finally:
        led.close()


def test_two_reconcilers_on_one_postgresql_database_run_every_slot_once_and_one_carries_on_alone(
        tmp_path: Path, postgres_url: str, pg_server: PgServer, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "slots.out"
    (sched / "tick.yaml").write_text(
        "name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
        f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SLOT >> {out}']}}\n")
    first = UrlDaemon(sched, tmp_path, postgres_url)
    daemons.append(first)
    first.wait_event("reconciler.started")
    second = UrlDaemon(sched, tmp_path, postgres_url, via_env=True)  # both fire every slot, claims decide
    daemons.append(second)
    second.wait_event("reconciler.started")
    wait_for(lambda: len(lines(out)) >= 6, timeout=20, what="six slots")
    assert first.stop() == 0
    together = len(lines(out))
    wait_for(lambda: len(lines(out)) >= together + 3, timeout=20, what="three slots run by the second alone")
    assert second.stop() == 0
    slots = lines(out)
    assert len(slots) == len(set(slots))  # no slot ran twice
    recorded = runs_of(postgres_url, "tick")
    assert len({r.slot for r in recorded}) == len(recorded) == len(slots)
    assert {r.status for r in recorded} == {"succeeded"}
    assert len(first.events("run.start")) + len(second.events("run.start")) == len(slots)
    assert len(second.events("run.start")) >= 3
    assert not (tmp_path / ".reconciler").exists()  # the default SQLite ledger was never opened
    for d in (first, second):
        log = d.log_path.read_text()
        assert pg_server.password not in log
        assert quote(pg_server.password, safe="") not in log


def test_plan_trigger_and_history_take_the_ledger_from_reconciler_ledger(
        tmp_path: Path, postgres_url: str, daemons: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "now.yaml").write_text("name: now\nschedule: {cron: '0 2 * * *'}\n"
                                    "run: {command: [/bin/sh, -c, 'echo hello']}\n")
    d = UrlDaemon(sched, tmp_path, postgres_url, via_env=True)
    daemons.append(d)
    d.wait_event("reconciler.started")
    assert d.stop() == 0
    env = {"RECONCILER_LEDGER": postgres_url}

    plan = reconciler("plan", "--dir", str(sched), "--format", "json", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr  # compared with the revision the daemon applied: no changes
    assert json.loads(plan.stdout)["against"].startswith("revision ")
    assert reconciler("plan", "--dir", str(sched), cwd=tmp_path).returncode == 2  # without it: all new

    r = reconciler("trigger", "now", "--dir", str(sched), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    h = reconciler("history", "now", "--format", "json", cwd=tmp_path, env=env)
    assert h.returncode == 0, h.stderr
    assert [(x["trigger"], x["status"]) for x in json.loads(h.stdout)] == [("manual", "succeeded")]
    assert [(x.cause, x.status) for x in runs_of(postgres_url, "now")] == [("manual", "succeeded")]
    assert not (tmp_path / ".reconciler").exists()  # no command fell back to the default SQLite file


def test_two_reconcilers_on_one_postgresql_database_never_overlap_runs_of_a_forbid_schedule(
        tmp_path: Path, postgres_url: str, daemons: list[Daemon]) -> None:
    from tests.service.test_exactly_once_daemon import busy

    sched, marks = busy(tmp_path)
    first = UrlDaemon(sched, tmp_path, postgres_url)
    second = UrlDaemon(sched, tmp_path, postgres_url)
    daemons.extend([first, second])
    first.wait_event("reconciler.started")
    second.wait_event("reconciler.started")
    time.sleep(8)
    assert first.stop() == 0
    assert second.stop() == 0
    recorded = runs_of(postgres_url, "busy")
    ran = sorted((r for r in recorded if r.started_at is not None), key=lambda r: r.started_at or r.slot)
    assert len(ran) >= 3
    assert {r.status for r in ran} <= {"succeeded", "interrupted"}
    for before, after in itertools.pairwise(ran):
        assert before.finished_at is not None
        assert after.started_at is not None
        assert after.started_at >= before.finished_at, "two runs of a forbid schedule overlapped"
    assert {r.error for r in recorded if r.status == "skipped"} == {
        "the previous run is still running (concurrency: forbid)"}
    kinds = [line.split()[0] for line in lines(marks)]  # what the jobs saw: never two started at once
    assert kinds[:2] == ["start", "end"]
    assert all(a != b for a, b in itertools.pairwise(kinds)), kinds
