"""--max-running through the real daemon: a slot that finds no room waits (queued) and, past its
starting_deadline, is recorded missed with reason pool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import Daemon, wait_for

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_with_room_for_one_run_the_second_slot_due_at_once_is_missed_for_pool(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    for name in ("a", "b"):
        (sched / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{every: 6s}}\nrun: {{command: [/bin/sleep, '3']}}\n"
            "policy: {starting_deadline: 1s, max_runs: 1}\n")
    d = Daemon(sched, tmp_path, "--max-running", "1", "--grace", "1s")
    daemons.append(d)
    missed = d.wait_event("run.missed", timeout=30, reason="pool")
    assert missed["error"].startswith("pool: could not start within starting_deadline")
    assert "all 1 runs this reconciler runs at once (--max-running) were busy" in missed["error"]
    ran = d.wait_event("run.end", timeout=30)
    assert ran["schedule"] != missed["schedule"]
    assert ran["status"] == "succeeded"
    wait_for(lambda: d.stop() == 0, timeout=45, what="a clean stop")


def test_max_running_below_one_is_a_usage_error(tmp_path: Path, reconciler: Run) -> None:
    r = reconciler("run", "--dir", str(tmp_path), "--max-running", "0", "--listen", "none")
    assert r.returncode == 64  # EX_USAGE, as every usage error
    assert "--max-running 0: at least 1" in r.stderr
