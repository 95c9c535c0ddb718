"""The image, built from the unchanged Dockerfile (tests/container/build.sh) and run for real with
podman, as a user of `docker run` would: on a small schedules directory, the ledger on a volume,
with the restrictions of the Kubernetes example (read-only root, no capabilities, no privilege
escalation). Slow: runs only with RECONCILER_CONTAINER_TESTS=1, as .ci/run sets it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.container.engine import HARDENED, Made, get, podman, unique_name
from tests.harness import wait_for

VERSION = "0.1.0"
# The job that is still running at SIGTERM: its argv is unique, so the host's /proc shows whether
# any of it outlives the container.
SLEEP = ["/bin/sleep", "317.031"]
GRACE = 2
RUN_ARGS = ["run", "--dir", "/schedules", "--ledger", "/data/ledger.db", "--listen", "0.0.0.0:8080",
            "--log-format", "json", "--grace", f"{GRACE}s"]

if os.environ.get("RECONCILER_CONTAINER_TESTS") != "1":
    pytest.skip("builds and runs the image with podman: set RECONCILER_CONTAINER_TESTS=1 (.ci/run does)",
                allow_module_level=True)
pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

Row = tuple[int, str, str, str, str]  # id, schedule, slot, trigger, status


def rows(ledger: Path) -> list[Row]:
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return db.execute("SELECT id, schedule, slot, trigger, status FROM runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def host_processes(argv: list[str]) -> list[int]:
    """PIDs on the host (any container's included) running exactly `argv`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().split(b"\0")[:-1] == [a.encode() for a in argv]:
                    found.append(int(proc.name))
            except OSError:
                continue  # it ended while we looked
    return found


# Lists the container's processes from inside it: PID, parent, real uid and gid, argv.
PS = """
import json, os
out = []
for p in filter(str.isdigit, os.listdir('/proc')):
    try:
        status = dict(l.split(':', 1) for l in open(f'/proc/{p}/status').read().splitlines())
        argv = open(f'/proc/{p}/cmdline', 'rb').read().decode().split('\\0')[:-1]
    except OSError:
        continue
    out.append({'pid': int(p), 'ppid': int(status['PPid']), 'uid': int(status['Uid'].split()[0]),
                'gid': int(status['Gid'].split()[0]), 'argv': argv})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def schedules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("container") / "schedules"
    d.mkdir()
    (d / "tick.yaml").write_text("name: tick\nschedule: {every: 1s}\n"
                                 "run: {command: [/bin/sh, -c, 'echo tick $RECONCILER_RUN_ID']}\n"
                                 "policy: {catchup: latest}\n")
    (d / "sleeper.yaml").write_text(f"name: sleeper\nschedule: {{every: 2s}}\nrun: {{command: {json.dumps(SLEEP)}}}\n")
    d.chmod(0o755)  # uid 10001 reads it through the bind mount
    for f in d.iterdir():
        f.chmod(0o644)
    return d


@dataclass
class Life:
    """What one container did, from start to stop."""

    name: str  # its id
    port: int = 0
    processes: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    healthcheck: subprocess.CompletedProcess[str] | None = None
    running_before_stop: list[Row] = field(default_factory=list)
    sleepers_before_stop: list[int] = field(default_factory=list)
    exit_code: int = -1
    stop_seconds: float = 0.0
    sleepers_after_stop: list[int] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    logs: str = ""


def start(image: str, made: Made, volume: str, schedules: Path, *args: str) -> Life:
    life = Life(made.run("--name", unique_name(), *HARDENED, "--publish", "127.0.0.1::8080",
                         "--volume", f"{schedules}:/schedules:ro", "--volume", f"{volume}:/data", image, *args))
    life.port = int(podman("port", life.name, "8080").stdout.strip().rsplit(":", 1)[1])
    return life


def stop(life: Life, ledger: Path, timings: dict[str, str], label: str) -> None:
    life.running_before_stop = [r for r in rows(ledger) if r[4] == "running"]
    life.sleepers_before_stop = host_processes(SLEEP)
    started = time.monotonic()
    podman("stop", "--time", "30", life.name, timeout=60)
    life.stop_seconds = time.monotonic() - started
    timings[f"{label}: podman stop (SIGTERM, --grace {GRACE}s)"] = f"{life.stop_seconds:.1f} s"
    life.exit_code = int(podman("inspect", "--format", "{{.State.ExitCode}}", life.name).stdout.strip())
    life.sleepers_after_stop = host_processes(SLEEP)
    life.rows = rows(ledger)
    logs = podman("logs", life.name)
    life.logs = logs.stdout + logs.stderr  # the reconciler logs to stderr


@pytest.fixture(scope="module")
def volume(made: Made) -> tuple[str, Path]:
    return made.volume()


@pytest.fixture(scope="module")
def first(image: str, made: Made, volume: tuple[str, Path], schedules: Path,
          timings: dict[str, str]) -> Life:
    ledger = volume[1] / "ledger.db"
    started = time.monotonic()
    life = start(image, made, volume[0], schedules, *RUN_ARGS)
    wait_for(lambda: get(life.port, "/readyz")[0] == 200, timeout=60, what="/readyz")
    timings["first container: start until ready"] = f"{time.monotonic() - started:.1f} s"
    for path in ("/healthz", "/readyz", "/"):
        life.answers[path] = get(life.port, path)
    life.processes = json.loads(podman("exec", life.name, "python3", "-c", PS).stdout)
    life.healthcheck = podman("healthcheck", "run", life.name, check=False)
    wait_for(lambda: len([r for r in rows(ledger) if r[1] == "tick" and r[4] == "succeeded"]) >= 3
             and any(r[1] == "sleeper" and r[4] == "running" for r in rows(ledger)),
             timeout=30, what="three ticks and a sleeper running")
    stop(life, ledger, timings, "first container")
    return life


@pytest.fixture(scope="module")
def second(image: str, made: Made, volume: tuple[str, Path], schedules: Path, first: Life,
           timings: dict[str, str]) -> Life:
    ledger = volume[1] / "ledger.db"
    time.sleep(2)  # downtime: with the container's own start, a few one-second slots pass
    life = start(image, made, volume[0], schedules, *RUN_ARGS)
    wait_for(lambda: any(r[1] == "tick" and r[3] == "catchup" and r[4] == "succeeded" for r in rows(ledger))
             and any(r[1] == "tick" and r[3] == "schedule" and r[0] > first.rows[-1][0] and r[4] == "succeeded"
                     for r in rows(ledger)),
             timeout=60, what="a catch-up run and a scheduled run after the restart")
    stop(life, ledger, timings, "second container")
    return life


def test_tini_is_pid_1_and_the_reconciler_runs_as_uid_10001(first: Life) -> None:
    by_pid = {p["pid"]: p for p in first.processes}
    assert by_pid[1]["argv"][:3] == ["tini", "--", "reconciler"]
    daemon = [p for p in first.processes
              if p["ppid"] == 1 and p["argv"][1:3] == ["/opt/reconciler/bin/reconciler", "run"]]
    assert len(daemon) == 1, first.processes
    assert all((p["uid"], p["gid"]) == (10001, 10001) for p in first.processes), first.processes


def test_the_probes_and_the_dashboard_answer_and_the_healthcheck_passes(first: Life) -> None:
    assert first.answers["/healthz"][0] == first.answers["/readyz"][0] == 200
    assert first.answers["/"][0] == 200
    assert "<html" in first.answers["/"][1].lower()
    assert first.healthcheck is not None
    assert first.healthcheck.returncode == 0, first.healthcheck.stdout + first.healthcheck.stderr


def test_jobs_run_and_their_runs_are_in_the_ledger_on_the_volume(first: Life) -> None:
    ticks = [r for r in first.rows if r[1] == "tick"]
    assert len([r for r in ticks if r[4] == "succeeded"]) >= 3
    assert len({r[2] for r in ticks}) == len(ticks), "a slot ran twice"
    assert any(json.loads(line).get("event") == "run.end" for line in first.logs.splitlines() if line.startswith("{"))


def test_sigterm_ends_the_running_job_as_interrupted_exits_0_and_leaves_no_process(first: Life) -> None:
    assert any(r[1] == "sleeper" for r in first.running_before_stop)
    assert first.sleepers_before_stop, "the sleeping job's process was not seen on the host"
    assert first.exit_code == 0, first.logs[-2000:]
    assert first.stop_seconds < 30 - 1, "SIGKILL'd at the end of podman's timeout, not stopped by SIGTERM"
    was_running = {r[0] for r in first.running_before_stop if r[1] == "sleeper"}
    assert [r[4] for r in first.rows if r[0] in was_running] == ["interrupted"]
    assert not [r for r in first.rows if r[4] == "running"]
    assert first.sleepers_after_stop == []


def test_a_new_container_on_the_same_volume_goes_on_with_the_next_ids_and_catches_up(first: Life, second: Life) -> None:
    last = first.rows[-1][0]
    new = [r for r in second.rows if r[0] > last]
    assert second.rows[:len(first.rows)] == first.rows, "the first container's runs changed"
    assert new[0][0] == last + 1
    tick_catchup = [r[4] for r in new if r[1] == "tick" and r[3] == "catchup"]
    assert tick_catchup == ["missed", "succeeded"]  # catchup: latest runs the newest missed slot once
    assert [r[4] for r in new if r[1] == "sleeper" and r[3] == "catchup"] == ["missed"]  # catchup: none
    assert second.exit_code == 0, second.logs[-2000:]
    assert not [r for r in second.rows if r[4] == "running"]


def test_the_image_answers_help_and_version(image: str) -> None:
    helped = podman("run", "--rm", "--no-healthcheck", image, "--help", check=False)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: reconciler" in " ".join(helped.stdout.split())
    version = podman("run", "--rm", "--no-healthcheck", image, "--version", check=False)
    if version.returncode == 2 and "--version" in version.stderr:
        pytest.skip("`reconciler --version` does not exist yet")
    assert version.returncode == 0, version.stderr
    assert VERSION in version.stdout


def test_the_image_has_the_oci_labels_a_healthcheck_and_the_version_of_the_package(image: str) -> None:
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    if revision.returncode == 0:
        assert labels["org.opencontainers.image.revision"] == revision.stdout.strip()
    health = json.loads(podman("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout)
    assert health["Test"][:2] == ["CMD", "python3"]  # kept: built with --format docker
    assert config["User"] == "10001:10001"


def test_the_final_stage_holds_no_build_tools_and_its_size_is_reported(image: str, timings: dict[str, str]) -> None:
    found = podman("run", "--rm", "--no-healthcheck", "--entrypoint", "sh", image, "-c",
                   "ls /opt/reconciler/bin; ls /opt/reconciler/lib/python3*/site-packages; command -v gcc cc || true",
                   check=False)
    assert found.returncode == 0, found.stderr
    names = found.stdout.split()
    assert "reconciler" in names
    assert not {"pip", "pip3", "setuptools", "wheel", "gcc", "cc"} & set(names), names
    assert not [n for n in names if n.startswith(("pip-", "setuptools-"))], names
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    base = podman("image", "inspect", "--format", "{{.Size}}", "docker.io/library/python:3.11-slim", check=False)
    timings["image size"] = f"{size / 1e6:.0f} MB"
    if base.returncode == 0:
        added = size - int(base.stdout)
        timings["image size: added to the base"] = f"{added / 1e6:.0f} MB"
        # ~81 MB with jsonschema-rs (validate's fast validator, a compiled wheel of a few MB):
        # build tools or a pip cache would add far more than this margin.
        assert added < 90e6, "the layers above the base grew: build tools or caches in the final stage?"


def test_a_data_directory_owned_by_root_fails_with_cannot_open_the_ledger_until_given_to_10001(
        image: str, made: Made, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    assert data.stat().st_uid == 0
    refused = podman("run", "--rm", "--no-healthcheck", "--volume", f"{data}:/data", image, check=False, timeout=60)
    assert refused.returncode == 1
    assert "/data/ledger.db: cannot open the ledger" in refused.stderr

    os.chown(data, 10001, 10001)  # the README's fix: give the directory to the image's user
    name = made.run("--name", unique_name(), "--no-healthcheck", "--volume", f"{data}:/data", image)
    wait_for(lambda: (data / "ledger.db").exists(), timeout=30, what="the ledger on the bind mount")
    podman("stop", "--time", "30", name, timeout=60)
    assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    assert (data / "ledger.db").stat().st_uid == 10001
