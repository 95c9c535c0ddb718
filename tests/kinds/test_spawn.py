"""How a run's process is started: never by forking the reconciler (a fork of a large threaded
process holds the GIL while it copies the page tables, and every thread then pays copy-on-write
faults), and still with PDEATHSIG and, where there is one, inside the run's cgroup before the job
runs a single instruction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reconciler.kinds.procs import Supervisor, stat

_FORKED: list[int] = []  # the write end of a pipe while armed: a forked child of ours writes to it


def _in_child() -> None:
    if _FORKED:
        os.write(_FORKED[0], b"f")


os.register_at_fork(after_in_child=_in_child)


@pytest.fixture(params=["cgroup", "subreaper"])
def supervisor(request: pytest.FixtureRequest) -> Supervisor:
    if request.param == "subreaper":
        return Supervisor(None)
    detected = Supervisor.detect({})
    if detected.cgroup_parent is None:
        pytest.skip("no cgroup v2 hierarchy we may create cgroups in here")
    return detected


def test_starting_a_job_never_forks_the_reconciler(supervisor: Supervisor) -> None:
    r, w = os.pipe()
    _FORKED.append(w)
    try:
        procs = supervisor.spawn(["/bin/true"], cwd=None, env={"PATH": "/usr/bin:/bin"})
        assert procs.proc.wait(timeout=10) == 0
        procs.close()
        assert procs.proc.stdout is not None
        procs.proc.stdout.close()
    finally:
        _FORKED.clear()
        os.close(w)
    os.set_blocking(r, False)
    try:
        forked = os.read(r, 16)
    except BlockingIOError:
        forked = b""
    finally:
        os.close(r)
    assert forked == b"", "a Python fork of the reconciler ran in the child"


def test_a_job_is_in_its_runs_cgroup_from_its_first_instruction() -> None:
    supervisor = Supervisor.detect({})
    if supervisor.cgroup_parent is None:
        pytest.skip("no cgroup v2 hierarchy we may create cgroups in here")
    procs = supervisor.spawn(["/bin/cat", "/proc/self/cgroup"], cwd=None, env={})
    assert procs.proc.stdout is not None
    out = procs.proc.stdout.read().decode()
    procs.proc.wait(timeout=10)
    cgroup = procs.cgroup
    procs.close()
    procs.proc.stdout.close()
    assert cgroup is not None
    assert any(line.startswith("0::") and line.endswith("/" + cgroup.name) for line in out.splitlines()), out


def test_a_job_gets_exactly_the_environment_it_is_given(supervisor: Supervisor) -> None:
    env = {"PATH": "/usr/bin:/bin", "X": "a b", "RECONCILER_RUN_ID": "7"}
    procs = supervisor.spawn(["/usr/bin/env"], cwd="/", env=env)
    assert procs.proc.stdout is not None
    out = procs.proc.stdout.read().decode()
    procs.proc.wait(timeout=10)
    procs.close()
    procs.proc.stdout.close()
    assert sorted(out.splitlines()) == sorted(f"{k}={v}" for k, v in env.items())


def test_a_relative_program_is_found_in_the_jobs_working_directory(tmp_path: Path, supervisor: Supervisor) -> None:
    (tmp_path / "sub").mkdir()
    job = tmp_path / "sub" / "job.sh"
    job.write_text("#!/bin/sh\necho from-sub\n")
    job.chmod(0o755)
    procs = supervisor.spawn(["./job.sh"], cwd=str(tmp_path / "sub"), env={"PATH": "/usr/bin:/bin"})
    assert procs.proc.stdout is not None
    out = procs.proc.stdout.read().decode()
    assert procs.proc.wait(timeout=10) == 0
    procs.close()
    procs.proc.stdout.close()
    assert out == "from-sub\n"


@pytest.mark.parametrize("cgroup", ["on", "off"])
def test_a_job_dies_with_the_process_that_started_it_even_by_sigkill(tmp_path: Path, cgroup: str) -> None:
    pid_file = tmp_path / "pid"
    code = textwrap.dedent(f"""
        import os, sys, time
        from reconciler.kinds.procs import Supervisor
        s = Supervisor.detect({{"RECONCILER_CGROUP": {cgroup!r}}})
        p = s.spawn(["/bin/sleep", "30"], cwd=None, env={{}})
        open({str(pid_file)!r}, "w").write(str(p.pid))
        time.sleep(60)
    """)
    starter = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        job = int(pid_file.read_text())
        first = stat(job)
        assert first is not None
        assert first.state not in ("Z", "X")
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = stat(job)
        if st is None or st.ticks != first.ticks or st.state in ("Z", "X"):
            break
        time.sleep(0.02)
    else:
        os.kill(job, signal.SIGKILL)
        pytest.fail("the job outlived the process that started it")
