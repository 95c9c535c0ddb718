"""The resident launcher (kinds/launcher.py): jobs are forked by one small process of ours, with
every guarantee the setpriv and sh chain gave, and nothing of the launcher leaks into a job."""

from __future__ import annotations

import os
import resource
import signal
import time

import pytest

from reconciler.core.limits import Limits
from reconciler.kinds import launcher
from reconciler.kinds.command.run import _poll
from reconciler.kinds.launcher import LaunchedProcess
from reconciler.kinds.procs import CPU_GRACE, RunProcesses, Supervisor, is_live, stat


@pytest.fixture(autouse=True)
def _launcher_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_LAUNCHER", "on")


def _run(procs: RunProcesses) -> str:
    assert procs.proc.stdout is not None
    out = procs.proc.stdout.read().decode()
    procs.proc.wait(timeout=10)
    procs.close()
    procs.proc.stdout.close()
    return out


def _wait_until(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.01)
    return False


def test_a_job_is_forked_by_the_resident_launcher_and_not_by_the_reconciler() -> None:
    procs = Supervisor(None).spawn(["/bin/sleep", "5"], cwd=None, env={})
    try:
        resident = launcher.resident()
        assert resident is not None
        assert resident.pid is not None
        assert isinstance(procs.proc, LaunchedProcess)
        st = stat(procs.pid)
        assert st is not None
        assert st.ppid == resident.pid
        assert st.session == procs.pid
        assert st.pgrp == procs.pid
    finally:
        procs.signal(signal.SIGKILL)
        procs.proc.wait(timeout=10)
        procs.close()
        assert procs.proc.stdout is not None
        procs.proc.stdout.close()


def test_a_job_inherits_no_ignored_or_blocked_signal_from_the_launcher() -> None:
    # The launcher ignores SIGINT and SIGTERM (they are the reconciler's to handle), and Python
    # ignores SIGPIPE: an ignored signal would survive exec into the job.
    out = _run(Supervisor(None).spawn(["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"], cwd=None, env={}))
    assert sorted(out.split()) == ["0000000000000000", "0000000000000000", "SigBlk:", "SigIgn:"], out


def test_a_job_gets_only_its_output_pipe_and_dev_null_as_descriptors() -> None:
    out = _run(Supervisor(None).spawn(["/bin/ls", "/proc/self/fd"], cwd=None, env={}))
    assert sorted(out.split()) == ["0", "1", "2", "3"]  # 3: the directory ls reads


def test_a_jobs_exit_status_and_usage_come_from_the_launcher() -> None:
    procs = Supervisor(None).spawn(["/bin/sh", "-c", "exit 7"], cwd=None, env={})
    assert _wait_until(lambda: _poll(procs) is not None)
    assert procs.proc.returncode == 7
    assert procs.rusage is not None
    assert (procs.rusage.peak_memory or 0) > 0
    procs.close()
    assert procs.proc.stdout is not None
    procs.proc.stdout.close()


def test_a_job_killed_by_a_signal_ends_with_that_signal() -> None:
    procs = Supervisor(None).spawn(["/bin/sleep", "30"], cwd=None, env={})
    procs.signal(signal.SIGTERM)
    assert procs.proc.wait(timeout=10) == -signal.SIGTERM
    procs.close()
    assert procs.proc.stdout is not None
    procs.proc.stdout.close()


def test_what_a_job_orphans_comes_to_the_reconciler_and_the_launcher_is_never_taken_for_it() -> None:
    procs = Supervisor(None).spawn(["/bin/sh", "-c", "setsid /bin/sleep 30 & echo $!; exit 0"], cwd=None, env={})
    assert procs.proc.stdout is not None
    orphan = int(procs.proc.stdout.readline())
    assert procs.proc.wait(timeout=10) == 0
    procs.close()
    procs.proc.stdout.close()
    resident = launcher.resident()
    assert resident is not None
    assert resident.pid is not None
    assert _wait_until(lambda: not is_live(orphan)), "the orphan outlived its run"
    assert is_live(resident.pid), "the launcher was stopped as if it were the run's"


def test_jobs_die_with_the_launcher_and_the_next_run_starts_a_new_one() -> None:
    procs = Supervisor(None).spawn(["/bin/sleep", "30"], cwd=None, env={})
    first = launcher.resident()
    assert first is not None
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    assert procs.proc.wait(timeout=10) == -signal.SIGKILL  # PDEATHSIG, said as the run's end
    assert _wait_until(lambda: not is_live(procs.pid))
    procs.close()
    assert procs.proc.stdout is not None
    procs.proc.stdout.close()
    assert _wait_until(lambda: not first.alive)
    out = _run(Supervisor(None).spawn(["/bin/echo", "again"], cwd=None, env={}))
    second = launcher.resident()
    assert out == "again\n"
    assert second is not None
    assert second.pid != first.pid


@pytest.mark.parametrize("value", [None, "off"])
def test_unless_the_launcher_is_turned_on_jobs_start_through_setpriv(monkeypatch: pytest.MonkeyPatch,
                                                                    value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("RECONCILER_LAUNCHER")
    else:
        monkeypatch.setenv("RECONCILER_LAUNCHER", value)
    procs = Supervisor(None).spawn(["/bin/true"], cwd=None, env={})
    assert not isinstance(procs.proc, LaunchedProcess)
    assert _run(procs) == ""


def test_a_runs_rlimits_are_set_in_the_launchers_child_and_nothing_else_changes_them() -> None:
    limits = Limits(cpu_time=30, open_files=64)
    out = _run(Supervisor(None).spawn(["/bin/sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -St; ulimit -Ht"], cwd=None,
                                      env={}, limits=limits))
    assert out.split() == ["64", "64", "30", str(30 + CPU_GRACE)]
    # Without limits the job gets the reconciler's own, not the launcher's raised descriptor limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = _run(Supervisor(None).spawn(["/bin/sh", "-c", "ulimit -Sn; ulimit -Hn"], cwd=None, env={}))
    assert out.split() == [str(soft) if soft >= 0 else "unlimited", str(hard) if hard >= 0 else "unlimited"]


def test_a_job_starts_inside_its_runs_cgroup_through_the_launcher() -> None:
    supervisor = Supervisor.detect({})
    if supervisor.cgroup_parent is None:
        pytest.skip("no cgroup v2 hierarchy we may create cgroups in here")
    procs = supervisor.spawn(["/bin/cat", "/proc/self/cgroup"], cwd=None, env={})
    assert isinstance(procs.proc, LaunchedProcess)
    cgroup = procs.cgroup
    out = _run(procs)
    assert cgroup is not None
    assert any(line.startswith("0::") and line.endswith("/" + cgroup.name) for line in out.splitlines()), out
