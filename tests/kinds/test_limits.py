"""Resource limits of the command kind with real processes: enforced in the child (prlimit, or the
run's cgroup), a run they end failed with its reason, and every run's usage measured."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from reconciler.core.limits import Limits
from reconciler.core.policy import RunStatus
from reconciler.kinds.command.spec import CommandRun
from reconciler.kinds.procs import Supervisor
from tests.kinds.test_command import command

SUPERVISORS = [pytest.param(lambda: Supervisor(None), id="process-group"),
               pytest.param(Supervisor.detect, id="detected")]
GROW = ("import time\nb=[]\nwhile True:\n    b.append(bytearray(8 << 20))\n    time.sleep(0.001)\n")


def limited(*argv: str, timeout: float = 30, **limits: int) -> CommandRun:
    return CommandRun(tuple(argv), None, (), timedelta(seconds=timeout), Limits(**limits))


@pytest.mark.parametrize("supervisor", SUPERVISORS)
def test_a_job_that_grows_past_its_memory_limit_fails_with_reason_memory(supervisor: Callable[[], Supervisor]) -> None:
    result = command(limited(sys.executable, "-c", GROW, memory=128 << 20), os.environ, supervisor=supervisor())
    assert result.status == RunStatus.FAILED
    assert (result.error or "").startswith("memory: over its memory limit (128Mi)"), result
    assert result.usage is not None
    assert result.usage.peak_memory is not None


@pytest.mark.parametrize("supervisor", SUPERVISORS)
def test_a_job_that_spins_past_its_cpu_time_fails_with_reason_cpu_time(supervisor: Callable[[], Supervisor]) -> None:
    result = command(limited("/bin/sh", "-c", "while :; do :; done", cpu_time=1), os.environ,
                     supervisor=supervisor())
    assert result.status == RunStatus.FAILED
    assert (result.error or "").startswith("cpu_time: over its cpu_time limit (1s of CPU)"), result
    assert result.usage is not None
    # The kernel signals at its tick-sampled CPU time, which on a loaded VM can run ahead of the
    # precise figure getrusage reports (0.88 s seen): the usage must show the spin, not the second.
    assert (result.usage.cpu_user or 0) + (result.usage.cpu_system or 0) >= 0.5


def test_open_files_is_the_jobs_rlimit_nofile() -> None:
    result = command(limited("/bin/sh", "-c", "ulimit -n", open_files=77), os.environ)
    assert (result.status, result.output.strip()) == (RunStatus.SUCCEEDED, "77")


def test_a_job_that_fails_under_limits_for_another_reason_keeps_its_plain_error() -> None:
    result = command(limited("/bin/sh", "-c", "exit 3", memory=256 << 20, cpu_time=60), os.environ)
    assert (result.status, result.error) == (RunStatus.FAILED, "exited with status 3")


@pytest.mark.parametrize("supervisor", SUPERVISORS)
def test_every_run_records_its_peak_memory_and_cpu_time(supervisor: Callable[[], Supervisor]) -> None:
    burn = "x = bytearray(64 << 20)\nimport time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    result = command(CommandRun((sys.executable, "-c", burn), None, (), timedelta(seconds=30)), os.environ,
                     supervisor=supervisor())
    assert result.status == RunStatus.SUCCEEDED
    assert result.usage is not None
    assert (result.usage.peak_memory or 0) >= 64 << 20
    assert (result.usage.cpu_user or 0) + (result.usage.cpu_system or 0) >= 0.25
    assert result.usage.cpu_system is not None


def test_without_prlimit_the_limits_are_set_in_python_between_fork_and_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.kinds import procs

    monkeypatch.setattr(procs, "_prlimit", lambda: None)
    result = command(limited("/bin/sh", "-c", "ulimit -n", open_files=77), os.environ, supervisor=Supervisor(None))
    assert (result.status, result.output.strip()) == (RunStatus.SUCCEEDED, "77")
