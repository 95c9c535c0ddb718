"""The run face of the command kind: a command with everything it starts (see kinds.procs).
No ledger here."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import select
import signal
import threading
import time

from reconciler.core.describe import utc_text
from reconciler.core.durations import format_duration
from reconciler.core.limits import Usage, format_size
from reconciler.core.policy import FailReason, RunStatus, limit_reason
from reconciler.kinds.base import KILL_GRACE, Attempt, Context, Finished, Handle
from reconciler.kinds.command.spec import CommandRun
from reconciler.kinds.launcher import LaunchedProcess
from reconciler.kinds.procs import RunProcesses, Supervisor
from reconciler.kinds.runtime import OUTPUT_CAP, CappedBuffer, SecretError, printable, redact, resolve

DRAIN_AFTER_EXIT = 1.0  # at most this long for the last output once every process of the run is gone
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")


class CommandHandle:
    """A started command: `wait` supervises it to its end; `stop` may come from another thread
    (replace, shutdown), before or while it is waited for."""

    def __init__(self, procs: RunProcesses, spec: CommandRun, buf: CappedBuffer) -> None:
        self._procs, self._spec, self._buf = procs, spec, buf
        self.stop_reason: RunStatus | None = None
        self.why: str | None = None  # said in the run's error when it was stopped
        self.kill_after = KILL_GRACE  # seconds from SIGTERM to SIGKILL once stopped
        self._wake: int | None = None
        self._lock = threading.Lock()

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
        """Stop the run: SIGTERM to all its processes, SIGKILL `kill_after` seconds later."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason, self.why = reason, why
            self.kill_after = min(self.kill_after, kill_after)
            if self._wake is not None:
                with contextlib.suppress(OSError):
                    os.write(self._wake, b"!")

    def _attach(self, wake: int | None) -> None:
        with self._lock:
            self._wake = wake

    def wait(self) -> Attempt:
        try:
            attempt = _supervise(self._procs, self._spec, self, self._buf)
        finally:
            _close(self._procs)
        return _judged(attempt, self._procs, self._spec)


def start(spec: CommandRun, context: Context, *, cap: int = OUTPUT_CAP,
          supervisor: Supervisor | None = None) -> Handle:
    environ = context.environ
    ids = {"RECONCILER_SCHEDULE": context.schedule, "RECONCILER_SLOT": utc_text(context.slot),
           "RECONCILER_RUN_ID": str(context.run_id), "RECONCILER_ATTEMPT": str(context.attempt),
           "RECONCILER_REVISION": context.revision}
    try:
        env_values, secrets = resolve(spec.env, environ)
    except SecretError as e:
        return Finished(Attempt(RunStatus.FAILED, error=str(e)))
    env = {k: environ[k] for k in BASE_ENV if k in environ}
    env.update(env_values)
    env.update(ids)
    try:
        procs = (supervisor or default_supervisor()).spawn(
            spec.argv, cwd=spec.workdir, env=env, marker=f"RECONCILER_RUN_ID={context.run_id}", limits=spec.limits)
    except Exception as e:  # a NUL in an argument, a missing program or workdir: the run fails, not the worker
        reason = (e.strerror or str(e)) if isinstance(e, OSError) else str(e) or type(e).__name__
        return Finished(Attempt(RunStatus.FAILED, error=redact(
            f"cannot start {printable(spec.argv[0])}: {printable(reason)}", secrets)))
    try:
        if context.on_started is not None:
            context.on_started(procs.whereabouts().dumps())
    except BaseException:
        _close(procs)
        raise
    return CommandHandle(procs, spec, CappedBuffer(cap, secrets))


def _close(procs: RunProcesses) -> None:
    procs.close()
    if procs.proc.stdout is not None:
        procs.proc.stdout.close()


def _supervise(procs: RunProcesses, spec: CommandRun, handle: CommandHandle, buf: CappedBuffer) -> Attempt:
    """Read the output while the job runs; stop it on its timeout or when asked; then stop what it
    left behind. One thread, no reader thread to leak: a leftover that holds the output pipe
    cannot hold the run open."""
    proc = procs.proc
    assert proc.stdout is not None
    out = proc.stdout.fileno()
    os.set_blocking(out, False)
    poller = select.poll()
    poller.register(out, select.POLLIN)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    poller.register(wake_r, select.POLLIN)
    pidfd = proc.exit_fd() if isinstance(proc, LaunchedProcess) else _pidfd(proc.pid)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)  # readable when the main process exits
    handle._attach(wake_w)
    deadline = time.monotonic() + spec.timeout.total_seconds()
    ending: str | None = None  # why we stopped it: "timeout" or "stop"
    term_at = 0.0
    killed, reading = False, True
    try:
        while _poll(procs) is None:
            now = time.monotonic()
            if ending is None and (handle.stop_reason is not None or now >= deadline):
                ending, term_at = ("stop" if handle.stop_reason is not None else "timeout"), now
                procs.signal(signal.SIGTERM)
            # A stop can shorten a timeout's SIGKILL delay (a shutdown during it), never lengthen it.
            kill_at = term_at + (min(KILL_GRACE, handle.kill_after) if handle.stop_reason else KILL_GRACE)
            if ending is not None and not killed and now >= kill_at:
                procs.signal(signal.SIGKILL)
                killed = True
            wake = deadline if ending is None else (kill_at if not killed else now + 0.05)
            if pidfd is None:
                wake = min(wake, now + 0.05)
            track = procs.next_track()
            if track is not None:
                wake = min(wake, track)
            for fd, _ in poller.poll(max(0, math.ceil(min(wake - now, 60) * 1000))):
                if fd == out and reading:
                    reading = _drain(out, buf)
                    if not reading:
                        poller.unregister(out)
                elif fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 64)
            procs.track(time.monotonic())
    finally:
        handle._attach(None)
        for own in (wake_r, wake_w, pidfd):
            if own is not None:
                os.close(own)
    # The main process has ended: whatever it left behind goes with it (no grandchild survives).
    procs.close()
    # Then the rest of the output: every writer is gone, unless one escaped us; never wait for that one.
    rest = select.poll()
    rest.register(out, select.POLLIN)
    end = time.monotonic() + DRAIN_AFTER_EXIT
    while reading and (left := end - time.monotonic()) > 0:
        if rest.poll(math.ceil(left * 1000)):
            reading = _drain(out, buf)
    output, dropped, code = buf.text(), buf.dropped, proc.returncode
    assert code is not None
    if ending == "stop":
        said = _ended(code) + (f" (SIGKILL {handle.kill_after:g}s after SIGTERM)" if killed else "")
        return Attempt(handle.stop_reason or RunStatus.CANCELLED, exit_code=code,
                       error=f"{handle.why}: {said}" if handle.why else said, output=output, dropped=dropped)
    if ending == "timeout":
        return Attempt(RunStatus.TIMED_OUT, exit_code=code, error=f"timed out after {format_duration(spec.timeout)}",
                       output=output, dropped=dropped)
    if code == 0:
        return Attempt(RunStatus.SUCCEEDED, exit_code=0, output=output, dropped=dropped)
    return Attempt(RunStatus.FAILED, exit_code=code, error=_ended(code), output=output, dropped=dropped)


def _poll(procs: RunProcesses) -> int | None:
    """Popen.poll, with the main process's resource usage kept: wait4 instead of waitpid."""
    proc = procs.proc
    if isinstance(proc, LaunchedProcess):  # the launcher reaps it, and reports its usage
        code = proc.poll()
        if code is not None:
            procs.rusage = proc.rusage
        return code
    if proc.returncode is not None:
        return proc.returncode
    try:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:  # reaped elsewhere: Popen knows how it ended
        return proc.poll()
    if pid != proc.pid:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux: the largest of the process and the descendants it waited for.
    procs.rusage = Usage(rusage.ru_maxrss * 1024, rusage.ru_utime, rusage.ru_stime)
    return proc.returncode


def _judged(attempt: Attempt, procs: RunProcesses, spec: CommandRun) -> Attempt:
    """The run's usage on its attempt (the cgroup's counters where it had one, which count every
    process of the run; else the main process's), and a failure a limit caused said as such."""
    end, own = procs.cgroup_end, procs.rusage
    usage = own
    if end is not None:
        mine = own or Usage()
        usage = Usage(mine.peak_memory if end.usage.peak_memory is None else end.usage.peak_memory,
                      mine.cpu_user if end.usage.cpu_user is None else end.usage.cpu_user,
                      mine.cpu_system if end.usage.cpu_system is None else end.usage.cpu_system)
    attempt.usage = usage
    limits = spec.limits
    if limits is None or attempt.status != RunStatus.FAILED or attempt.exit_code is None:
        return attempt
    cpu = None if own is None or own.cpu_user is None else own.cpu_user + (own.cpu_system or 0.0)
    reason = limit_reason(exit_code=attempt.exit_code, memory_limit=limits.memory is not None,
                          cpu_limit=limits.cpu_time, oom_kills=end.oom_kills if end else 0, cpu_used=cpu,
                          output=attempt.output)
    if reason == FailReason.MEMORY:
        assert limits.memory is not None
        how = "killed by the out-of-memory killer" if end and end.oom_kills else "an allocation was refused"
        attempt.error = f"memory: over its memory limit ({format_size(limits.memory)}): {how}; {attempt.error}"
    elif reason == FailReason.CPU_TIME:
        attempt.error = f"cpu_time: over its cpu_time limit ({limits.cpu_time}s of CPU); {attempt.error}"
    return attempt


def _ended(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


def _drain(fd: int, buf: CappedBuffer) -> bool:
    """Read what is there (a bounded amount, so that a fast writer cannot starve the checks of
    timeout and stop); False at the end of the stream."""
    for _ in range(16):
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf.write(chunk)
    return True


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3, or not Linux: poll the process instead
        return None


@functools.cache
def default_supervisor() -> Supervisor:
    """One per process: what the machine allows does not change while we run."""
    return Supervisor.detect()
