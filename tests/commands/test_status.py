"""`reconciler status`, run for real: from the ledger alone, and from a running daemon (--server)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import Daemon, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]


def directory(tmp_path: Path) -> Path:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "fails.yaml").write_text("name: fails\nschedule: {every: 1s}\nrun: {command: [/bin/false]}\n")
    (sched / "yearly.yaml").write_text("name: yearly\nschedule: {cron: '0 3 1 1 *'}\nrun: {command: [/bin/true]}\n")
    return sched


def test_status_from_the_ledger_shows_the_revision_runs_failing_schedules_replicas_and_next_fires(
        tmp_path: Path, reconciler: Run, started: list[Daemon]) -> None:
    d = Daemon(directory(tmp_path), tmp_path)
    started.append(d)
    d.wait_event("run.end", schedule="fails", timeout=20)
    revision = d.wait_event("revision.applied")["revision"]
    assert d.stop() == 0

    r = reconciler("status", "--ledger", str(d.ledger), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["source"] == "ledger"
    assert data["applied"]["revision"] == revision
    assert data["rejected"] is None
    assert data["runs"]["failed"] >= 1
    assert data["runs"]["succeeded"] == 0
    assert [f["schedule"] for f in data["failing"]] == ["fails"]
    (replica,) = data["replicas"]
    assert replica["state"] == "stopped"
    assert replica["revision"] == revision
    assert data["failing"][0]["replica"] == replica["id"]
    assert {n["schedule"] for n in data["next"]} == {"fails", "yearly"}

    text = reconciler("status", "--ledger", str(d.ledger), cwd=tmp_path).stdout
    assert f"applied revision: {revision}" in text
    assert "failing schedules: 1\n  fails" in text
    assert "replicas: 0 alive of 1" in text
    assert "yearly" in text


def test_status_from_a_running_daemon_shows_it_alive_and_a_rejected_revision(
        tmp_path: Path, reconciler: Run, started: list[Daemon]) -> None:
    sched = directory(tmp_path)
    d = Daemon(sched, tmp_path)
    started.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    d.wait_event("run.end", schedule="fails", timeout=20)
    (sched / "broken.yaml").write_text("name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [/bin/true]}\n")
    d.wait_event("revision.rejected", timeout=20)

    def answered() -> dict[str, object] | None:
        r = reconciler("status", "--server", base, "--format", "json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        data: dict[str, object] = json.loads(r.stdout)
        return data if data["rejected"] else None

    data = wait_for(answered, timeout=15, what="the rejected revision in the status")
    assert data["source"] == "daemon"
    assert data["ready"] is True
    replicas = data["replicas"]
    assert isinstance(replicas, list)
    assert [r["state"] for r in replicas] == ["alive"]
    assert replicas[0]["heartbeat_age_seconds"] < 10
    text = reconciler("status", "--server", base, cwd=tmp_path).stdout
    assert "rejected revision:" in text
    assert "replicas: 1 alive of 1" in text
    assert d.stop() == 0


def test_history_names_the_replica_that_ran_each_run(tmp_path: Path, reconciler: Run, started: list[Daemon]) -> None:
    d = Daemon(directory(tmp_path), tmp_path)
    started.append(d)
    replica = d.wait_event("replica.registered")["replica"]
    d.wait_event("run.end", schedule="fails", timeout=20)
    assert d.stop() == 0
    r = reconciler("history", "fails", "--ledger", str(d.ledger), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {x["replica"] for x in json.loads(r.stdout)} == {replica}
    text = reconciler("history", "fails", "--ledger", str(d.ledger), cwd=tmp_path).stdout
    assert "REPLICA" in text.splitlines()[0]
    assert all(line.endswith(replica) for line in text.splitlines()[1:])
