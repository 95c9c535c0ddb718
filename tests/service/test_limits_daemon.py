"""Resource limits through the real daemon: a job over its memory limit is failed with reason
memory, and what every run used is in `history --run`, the API and the metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.harness import Daemon

Run = Callable[..., subprocess.CompletedProcess[str]]
GROW = "b = []\\nwhile True: b.append(bytearray(8 << 20))"


def test_a_job_over_its_memory_limit_is_failed_with_reason_memory_and_its_usage_is_shown(
        tmp_path: Path, daemons: list[Daemon], reconciler: Run) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "hog.yaml").write_text(
        "name: hog\nschedule: {every: 2s}\n"
        f"run: {{command: [{sys.executable}, -c, \"{GROW}\"], limits: {{memory: 96Mi, cpu_time: 1m}}}}\n"
        "policy: {max_runs: 1}\n")
    d = Daemon(sched, tmp_path, "--listen", "127.0.0.1:0")
    daemons.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    end = d.wait_event("run.end", timeout=30, schedule="hog")
    assert end["status"] == "failed"
    assert end["error"].startswith("memory: over its memory limit (96Mi)"), end

    shown = reconciler("history", "--run", str(end["run_id"]), "--ledger", str(d.ledger), "--format", "json")
    data = json.loads(shown.stdout)
    assert data["error"].startswith("memory: ")
    assert data["peak_memory_bytes"] > 8 << 20
    assert data["cpu_user_seconds"] is not None
    assert data["cpu_system_seconds"] is not None

    with urllib.request.urlopen(f"{base}/api/v1/runs/{end['run_id']}", timeout=10) as r:
        api = json.load(r)
    assert api["peak_memory_bytes"] == data["peak_memory_bytes"]
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert 'reconciler_run_peak_memory_bytes_count{schedule="hog"} 1.0' in metrics
    assert 'reconciler_run_cpu_seconds_count{mode="user",schedule="hog"} 1.0' in metrics
