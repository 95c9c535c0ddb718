"""The resident launcher: one small process, started once, that forks the reconciler's jobs.

Starting a job through `setpriv` and `sh` (kinds/procs.py) costs three execs per run; a `preexec_fn`
forks the whole reconciler. The launcher (kinds/launcher_main.py, standard library only) is started
with vfork + exec like any job, receives launch requests over a socket (the run's output pipe passed
along), forks the job from its own small address space and reports each exit with the job's
resource usage. Each run's news (started, exited with its usage) come on a pipe of its own, read by the thread
that supervises the run: no thread here hands them over.

Every guarantee of the other ways stays: the job is in a new session (its own process group),
within its rlimits, inside its run's cgroup before it runs, and dies with its parent (PDEATHSIG);
the launcher ends when its socket to the reconciler does, so a reconciler killed with SIGKILL takes
the launcher and every job with it. Orphans of a job are reparented to the reconciler (the
subreaper), not to the launcher, which is no subreaper.

It is used where RECONCILER_LAUNCHER=on: on the 2-core VM it was measured on, a fork of even a
small Python process cost about as much CPU as the two extra execs it saves, and starting jobs
from another process made the loaded daemon slower (docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import math
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from reconciler.core.limits import Usage

_ON = frozenset(("1", "on", "yes", "true"))


class LaunchError(Exception):
    """The launcher is gone or cannot be started: start the job another way."""


class CgroupMoveFailed(Exception):
    """The job could not enter its cgroup (it never ran)."""


class LaunchedProcess:
    """A job the launcher started: what RunProcesses and the command kind use of a Popen (`pid`,
    `stdout`, `returncode`, `poll`, `wait`), plus the main process's usage once it ended. Its
    news come on its own answer pipe, read by whichever thread asks."""

    def __init__(self, pid: int, stdout: IO[bytes], answer: int) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self.rusage: Usage | None = None
        self._answer: int | None = answer
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None and self._answer is not None:
                self._read(blocking=False)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self._lock:
            if self.returncode is None and self._answer is not None:
                if timeout is not None:
                    ready = select.poll()
                    ready.register(self._answer, select.POLLIN)
                    if not ready.poll(max(0, math.ceil(timeout * 1000))):
                        raise subprocess.TimeoutExpired(str(self.pid), timeout)
                self._read(blocking=True)
            assert self.returncode is not None
            return self.returncode

    def exit_fd(self) -> int:
        """A descriptor that turns readable once the exit can be read (what a pidfd is for a child
        of ours: for a job of the launcher, the pidfd would turn readable before the launcher has
        reaped it). The caller closes it."""
        with self._lock:
            if self._answer is not None:
                return os.dup(self._answer)
        r, w = os.pipe2(os.O_CLOEXEC)
        os.close(w)  # at its end already: readable at once
        return r

    def _read(self, *, blocking: bool) -> None:
        """The exit line, or the end of the pipe: the launcher died, and the job with it."""
        assert self._answer is not None
        if not blocking:
            ready = select.poll()
            ready.register(self._answer, select.POLLIN)
            if not ready.poll(0):
                return
        line = _line(self._answer)
        os.close(self._answer)
        self._answer = None
        words = line.split()
        if len(words) == 5 and words[0] == "exit":
            self.rusage = Usage(int(words[2]) * 1024, float(words[3]), float(words[4]))  # ru_maxrss is in KiB
            self.returncode = os.waitstatus_to_exitcode(int(words[1]))
        else:
            self.returncode = -signal.SIGKILL  # PDEATHSIG, when the launcher died

    def __del__(self) -> None:
        if self._answer is not None:
            with contextlib.suppress(OSError):
                os.close(self._answer)


def _line(fd: int) -> str:
    """One line from a blocking pipe, read a byte at a time (nothing past it may be consumed)."""
    out = bytearray()
    while True:
        b = os.read(fd, 1)
        if not b or b == b"\n":
            return out.decode()
        out += b


class Launcher:
    """The reconciler's side of one launcher process."""

    def __init__(self) -> None:
        self._send_lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # No thread of ours waits for it: it ends when its socket does, which the kernel closes
            # when the reconciler ends in any way (a fork of ours that never execs would hold it
            # open, and the reconciler forks only before its first run).
            self._proc = subprocess.Popen(
                [sys.executable, *_flags(), str(Path(__file__).with_name("launcher_main.py")),
                 str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        except OSError as e:
            ours.close()
            raise LaunchError(f"cannot start the launcher: {e}") from e
        finally:
            theirs.close()
        self._sock = ours
        self.pid = self._proc.pid
        atexit.register(self._close)

    def _close(self) -> None:
        """At exit: its socket closed, it ends (and its jobs with it); reaped, not left a zombie."""
        with self._send_lock:
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=2)

    @property
    def alive(self) -> bool:
        with self._send_lock:
            if self._sock.fileno() >= 0 and self._proc.poll() is not None:  # reaped here: it is gone
                self._sock.close()
            return self._sock.fileno() >= 0

    def launch(self, path: str, argv: Sequence[str], cwd: str | None, env: Mapping[str, str],
               rlimits: Sequence[tuple[int, int, int]], cgroup_procs: str | None) -> LaunchedProcess:
        """Start `path` with `argv` (exec semantics: no PATH search here) in a new session, its
        stdout and stderr on one new pipe."""
        request = pickle.dumps((path, list(argv), cwd, dict(env), list(rlimits), cgroup_procs))
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        answer_r, answer_w = os.pipe2(os.O_CLOEXEC)
        try:
            with self._send_lock:
                if self._sock.fileno() < 0:
                    raise LaunchError("the launcher has ended")
                try:
                    socket.send_fds(self._sock, [request], [out_w, answer_w])
                except OSError as e:
                    raise LaunchError(f"cannot reach the launcher: {e}") from e
        except BaseException:
            os.close(out_r)
            os.close(answer_r)
            raise
        finally:
            os.close(out_w)
            os.close(answer_w)
        words = _line(answer_r).split()
        if len(words) == 2 and words[0] == "started":
            return LaunchedProcess(int(words[1]), os.fdopen(out_r, "rb"), answer_r)
        os.close(out_r)
        os.close(answer_r)
        if len(words) != 3:
            raise LaunchError("the launcher ended during the start")
        stage, err = words[1], int(words[2])
        if stage == "cgroup":
            raise CgroupMoveFailed(f"cannot move the job into its cgroup: {os.strerror(err) if err else '?'}")
        raise OSError(err or errno.EIO, os.strerror(err or errno.EIO), path if stage == "exec" else cwd)


_resident: Launcher | None = None
_resident_lock = threading.Lock()
_refused = False  # it could not start here once: not tried again


def resident(environ: Mapping[str, str] = os.environ) -> Launcher | None:
    """The process's launcher, started on first use (and again if it died); None unless it is
    turned on (RECONCILER_LAUNCHER=on) and can run (Linux)."""
    global _resident, _refused
    if _refused or environ.get("RECONCILER_LAUNCHER", "").strip().lower() not in _ON \
            or not sys.platform.startswith("linux"):
        return None
    with _resident_lock:
        if _resident is not None and _resident.alive:
            return _resident
        with contextlib.suppress(LaunchError):
            _resident = Launcher()
            return _resident
        _refused = True
        return None


def close_resident() -> None:
    """End the process's launcher now rather than at exit (its jobs end with it); the next use
    starts another."""
    global _resident
    with _resident_lock:
        if _resident is not None:
            _resident._close()
            _resident = None


def is_launcher(pid: int) -> bool:
    """Is this our live launcher (a child of ours that is no run's orphan)?"""
    launcher = _resident
    return launcher is not None and launcher.alive and launcher.pid == pid


def _flags() -> list[str]:
    """Isolated, and without site: a small process that imports nothing it does not need. Under
    coverage's measurement (the test suite, COVERAGE_PROCESS_CONFIG) with site, whose .pth file is
    how coverage measures a subprocess: otherwise the launcher's own code is never measured."""
    return ["-I"] if "COVERAGE_PROCESS_CONFIG" in os.environ else ["-I", "-S"]
