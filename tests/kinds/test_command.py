"""The command kind's run face with real processes: output, timeouts, secrets, and every process a
run started stopped with it."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.model import EnvValue
from reconciler.core.policy import RunStatus
from reconciler.kinds.base import Attempt, Context
from reconciler.kinds.command.run import start
from reconciler.kinds.command.spec import CommandRun
from reconciler.kinds.procs import Supervisor, Whereabouts, stat
from reconciler.kinds.runtime import OUTPUT_CAP
from tests.kinds.leaks import SECRET, leaks

SLOT = datetime(2026, 1, 1, tzinfo=UTC)


def cmd(*argv: str, timeout: float = 10, env: dict[str, EnvValue] | None = None, workdir: str | None = None
        ) -> CommandRun:
    return CommandRun(tuple(argv), workdir, tuple((env or {}).items()), timedelta(seconds=timeout))


def context(environ: Mapping[str, str], *, schedule: str = "job", run_id: int = 1,
            on_started: Callable[[str], None] | None = None) -> Context:
    return Context(schedule, SLOT, run_id, 1, "rev", environ, on_started)


def command(spec: CommandRun, environ: Mapping[str, str], *, cap: int = OUTPUT_CAP,
            supervisor: Supervisor | None = None, run_id: int = 1) -> Attempt:
    """Start and wait, as the runner does."""
    return start(spec, context(environ, run_id=run_id), cap=cap, supervisor=supervisor).wait()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead; only its parent has not reaped it


def test_a_job_that_spawns_grandchildren_and_times_out_leaves_no_process_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! >> {pids}; (sleep 300 & echo $! >> {pids}; wait) & wait"
    start = time.monotonic()
    result = command(cmd("/bin/sh", "-c", script, timeout=1), os.environ)
    assert result.status == "timed_out"
    assert result.error == "timed out after 1s"
    assert time.monotonic() - start < 8
    children = [int(x) for x in pids.read_text().split()]
    assert len(children) == 2
    for pid in children:
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.05)
        assert not alive(pid), f"grandchild {pid} survived"


def test_a_job_printing_100_mb_keeps_memory_bounded_and_counts_what_was_dropped() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = command(cmd("/bin/sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' x; echo; echo tail-marker"),
                         os.environ)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.status == "succeeded"
    assert result.output.startswith("x" * 1000)
    assert result.output.rstrip().endswith("tail-marker")
    assert result.dropped == 100_000_000 + len("\ntail-marker\n") - OUTPUT_CAP
    assert f"[... {result.dropped} bytes dropped ...]" in result.output
    assert grown_mib < 30, f"memory grew by {grown_mib:.0f} MiB"


def test_a_missing_executable_is_a_failed_run_with_the_os_error() -> None:
    result = command(cmd("/nonexistent/job"), os.environ)
    assert result.status == "failed"
    assert result.error == "cannot start /nonexistent/job: No such file or directory"


def test_exit_status_and_signals_are_reported() -> None:
    assert command(cmd("/bin/sh", "-c", "exit 3"), os.environ).error == "exited with status 3"
    killed = command(cmd("/bin/sh", "-c", "kill -9 $$"), os.environ)
    assert (killed.status, killed.exit_code, killed.error) == ("failed", -9, "killed by signal 9")


def test_the_environment_is_minimal_plus_the_spec_plus_reconciler_ids(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-secret-value\n")
    env = {"MODE": EnvValue(literal="full"), "TOKEN": EnvValue(from_env="OUTER_SECRET"),
           "FILE": EnvValue(from_file=str(secret))}
    result = command(cmd("/bin/sh", "-c", "echo $MODE $TOKEN $FILE $RECONCILER_SCHEDULE $UNRELATED; pwd",
                             env=env, workdir=str(tmp_path)),
                     {**os.environ, "OUTER_SECRET": "env-secret-value", "UNRELATED": "leak"})
    assert result.output.splitlines() == ["full [redacted] [redacted] job", str(tmp_path)]


def test_an_unreadable_secret_fails_the_run_without_starting_it(tmp_path: Path) -> None:
    result = command(cmd("/bin/true", env={"T": EnvValue(from_env="NOT_SET_ANYWHERE")}), {})
    assert (result.status, result.error) == ("failed", "T: environment variable NOT_SET_ANYWHERE is not set")


# ---- any exception finishes the attempt as failed -------------------------------------------------


@pytest.mark.parametrize(("spec", "reason"), [
    (cmd("/bin/echo", "a\0b"), "embedded null byte"),
    (cmd("/bin/true", env={"X": EnvValue(literal="a\0b")}), "embedded null byte"),
    (cmd("/bin/\0true"), "embedded null byte"),
])
def test_a_job_that_cannot_be_started_for_any_reason_fails_with_that_reason(spec: CommandRun, reason: str) -> None:
    result = command(spec, os.environ)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("cannot start /bin/")
    assert reason in result.error
    assert "\0" not in result.error


# ---- redaction happens before the cut ---------------------------------------------------------------


@pytest.mark.parametrize("before", [14, 20, 28, 29])  # the head keeps 32 bytes: the secret straddles its end
def test_a_secret_straddling_the_end_of_the_head_is_redacted_whole(before: int) -> None:
    script = f"printf '%s' {'a' * before}; printf '%s' \"$TOKEN\"; head -c 500 /dev/zero | tr '\\0' z"
    result = command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}),
                     {"PATH": "/usr/bin:/bin", "T": SECRET}, cap=64)
    assert leaks(result.output) == []
    assert result.output.startswith("a" * before)


@pytest.mark.parametrize("after", [14, 20, 28, 29])  # the tail keeps 32 bytes: the secret straddles its start
def test_a_secret_straddling_the_start_of_the_tail_is_redacted_whole(after: int) -> None:
    script = f"head -c 500 /dev/zero | tr '\\0' z; printf '%s' \"$TOKEN\"; printf '%s' {'a' * after}"
    result = command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}),
                     {"PATH": "/usr/bin:/bin", "T": SECRET}, cap=64)
    assert leaks(result.output) == []
    assert result.output.endswith("a" * after)


def test_a_secret_written_in_pieces_is_redacted() -> None:
    script = "printf hunter2-; sleep 0.2; printf very-; sleep 0.2; printf 'secret and more\\n'"
    result = command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}),
                     {"PATH": "/usr/bin:/bin", "T": SECRET})
    assert result.output == "[redacted] and more\n"


# ---- everything a run started stops with it ---------------------------------------------------------


def wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def kill_quietly(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


@pytest.fixture(params=["cgroup", "subreaper"])
def supervisor(request: pytest.FixtureRequest) -> Supervisor:
    """Both ways of finding a run's processes: a cgroup of its own where the machine allows it, the
    process group and the adopted orphans everywhere else."""
    if request.param == "subreaper":
        return Supervisor(None)
    detected = Supervisor.detect({})
    if detected.cgroup_parent is None:
        pytest.skip("no cgroup v2 hierarchy we may create cgroups in here")
    return detected


def gone(pid: int, timeout: float = 3) -> bool:
    """Not running and not left as a zombie of ours: reaped by whoever is its parent now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = stat(pid)
        if st is None or (st.state == "Z" and st.ppid != os.getpid()):
            return True
        time.sleep(0.02)
    return False


def test_a_setsid_child_holding_the_output_ends_with_the_job_and_leaves_no_process(
        tmp_path: Path, supervisor: Supervisor) -> None:
    pid_file = tmp_path / "pid"
    script = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' & sleep 0.2; echo done"
    threads = threading.active_count()
    start = time.monotonic()
    result = command(cmd("/bin/sh", "-c", script), os.environ, supervisor=supervisor)
    elapsed = time.monotonic() - start
    child = int(pid_file.read_text())
    try:
        assert (result.status, result.output) == ("succeeded", "done\n")
        assert elapsed < 2, f"the run took {elapsed:.1f}s"
        assert gone(child), "the setsid child survived the run"
        assert threading.active_count() == threads, "a reader thread was left behind"
    finally:
        kill_quietly(child)


def test_an_escaped_daemon_of_a_run_is_stopped_when_the_run_ends(tmp_path: Path, supervisor: Supervisor) -> None:
    """A double fork into a new session, output closed: found by the run's cgroup, or, adopted by
    the subreaper, by the run's marker in its environment."""
    pid_file = tmp_path / "pid"
    script = (f"(setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' </dev/null >/dev/null 2>&1 &); "
              f"while [ ! -s {pid_file} ]; do sleep 0.05; done")
    result = command(cmd("/bin/sh", "-c", script), os.environ, supervisor=supervisor, run_id=41)
    child = int(pid_file.read_text())
    try:
        assert result.status == "succeeded"
        assert gone(child), "the escaped daemon survived the run"
    finally:
        kill_quietly(child)


def test_a_timed_out_job_is_stopped_with_a_child_that_left_its_session(
        tmp_path: Path, supervisor: Supervisor) -> None:
    pid_file = tmp_path / "pid"
    script = f"setsid sh -c 'trap \"\" TERM; echo $$ > {pid_file}; sleep 30' & sleep 30"
    result = command(cmd("/bin/sh", "-c", script, timeout=1), os.environ, supervisor=supervisor)
    child = int(pid_file.read_text())
    try:
        assert result.status == "timed_out"
        assert gone(child)
    finally:
        kill_quietly(child)


def test_a_stopped_job_that_ignores_sigterm_is_killed_and_says_so(supervisor: Supervisor) -> None:
    handle = start(cmd("/bin/sh", "-c", "trap '' TERM; sleep 30", timeout=60), context(os.environ),
                   supervisor=supervisor)
    stopper = threading.Timer(0.5, handle.stop, (RunStatus.INTERRUPTED, "the reconciler stopped", 0.5))
    stopper.start()
    started = time.monotonic()
    result = handle.wait()
    elapsed = time.monotonic() - started
    assert (result.status, result.exit_code) == ("interrupted", -9)
    assert result.error == "the reconciler stopped: killed by signal 9 (SIGKILL 0.5s after SIGTERM)"
    assert elapsed < 3, f"stopping took {elapsed:.1f}s"


def test_a_job_stopped_after_it_ended_is_recorded_as_it_ended(supervisor: Supervisor) -> None:
    handle = start(cmd("/bin/sh", "-c", "exit 3"), context(os.environ), supervisor=supervisor)
    result = handle.wait()
    handle.stop(RunStatus.INTERRUPTED)
    assert (result.status, result.exit_code, result.error) == ("failed", 3, "exited with status 3")


def test_a_job_stopped_before_it_is_waited_for_is_stopped_at_once(supervisor: Supervisor) -> None:
    handle = start(cmd("/bin/sh", "-c", "sleep 30", timeout=60), context(os.environ), supervisor=supervisor)
    handle.stop(RunStatus.CANCELLED, "replaced")
    started = time.monotonic()
    result = handle.wait()
    assert (result.status, result.error) == ("cancelled", "replaced: killed by signal 15")
    assert time.monotonic() - started < 2


def test_where_a_run_lives_is_reported_once_it_started(supervisor: Supervisor) -> None:
    seen: list[Whereabouts | None] = []
    result = start(cmd("/bin/sh", "-c", "echo $$; cat /proc/self/cgroup"),
                   context(os.environ, on_started=lambda text: seen.append(Whereabouts.loads(text))),
                   supervisor=supervisor).wait()
    (where,) = seen
    assert where is not None
    assert where.here()
    assert str(where.pgid) == result.output.split()[0]
    if supervisor.cgroup_parent is None:
        assert where.cgroup is None
    else:
        assert where.cgroup is not None
        assert f"::/{Path(where.cgroup).name}" in result.output or Path(where.cgroup).name in result.output
        assert not Path(where.cgroup).exists(), "the run's cgroup was not removed"


