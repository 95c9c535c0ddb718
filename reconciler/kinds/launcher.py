"""The resident launcher: one small process, started once, that forks the reconciler's jobs.

Starting a job through `setpriv` and `sh` (kinds/procs.py) costs three execs per run; a `preexec_fn`
forks the whole reconciler. The launcher (kinds/launcher_main.py, standard library only) is started
with vfork + exec like any job, receives launch requests over a socket (the run's output pipe passed
along), forks the job from its own small address space and reports each exit with the job's
resource usage. One thread here reads those reports for every run.

Every guarantee of the other ways stays: the job is in a new session (its own process group),
within its rlimits, inside its run's cgroup before it runs, and dies with its parent (PDEATHSIG);
the launcher dies with the thread here that started it, so a reconciler killed with SIGKILL takes
the launcher and every job with it. Orphans of a job are reparented to the reconciler (the
subreaper), not to the launcher, which is no subreaper.

RECONCILER_LAUNCHER=off starts jobs the old way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from reconciler.core.limits import Usage

_OFF = frozenset(("0", "off", "no", "false"))
MESSAGE = 1 << 20
READY_TIMEOUT = 30.0


class LaunchError(Exception):
    """The launcher is gone or cannot be started: start the job another way."""


class CgroupMoveFailed(Exception):
    """The job could not enter its cgroup (it never ran)."""


class LaunchedProcess:
    """A job the launcher started: what RunProcesses and the command kind use of a Popen (`pid`,
    `stdout`, `returncode`, `poll`, `wait`), plus the main process's usage once it ended."""

    def __init__(self, pid: int, stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self.rusage: Usage | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._notify: list[int] = []  # write ends closed at the exit: see exit_fd

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def exit_fd(self) -> int:
        """A descriptor that turns readable once the exit is known here (what a pidfd is for a
        child of ours: for a job of the launcher, the pidfd would turn readable before the report
        arrives). The caller closes it."""
        r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        with self._lock:
            if self.returncode is None:
                self._notify.append(w)
                return r
        os.close(w)
        return r

    def _ended(self, code: int, usage: Usage | None) -> None:
        with self._lock:
            self.rusage = usage
            self.returncode = code
            notify, self._notify = self._notify, []
        self._done.set()
        for w in notify:
            os.close(w)


class Launcher:
    """The reconciler's side of one launcher process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next = 0
        self._replies: dict[int, tuple[threading.Event, list[tuple[Any, ...]]]] = {}
        self._procs: dict[int, LaunchedProcess] = {}
        self._early: dict[int, tuple[int, Usage]] = {}  # exits reported before their start reply was read
        self._sock: socket.socket | None = None
        self.pid: int | None = None
        self._alive = False
        self._ready = threading.Event()
        self._failure: str | None = None
        # The thread that starts the launcher is the one PDEATHSIG ties it to: it lives as long as
        # the launcher does, reading its reports.
        self._thread = threading.Thread(target=self._serve, name="launcher", daemon=True)
        self._thread.start()
        self._ready.wait(READY_TIMEOUT)
        if not self._alive:
            raise LaunchError(self._failure or "the launcher did not start")

    @property
    def alive(self) -> bool:
        return self._alive

    def _serve(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(__file__).with_name("launcher_main.py")),
                 str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        except OSError as e:
            self._failure = f"cannot start the launcher: {e}"
            ours.close()
            theirs.close()
            self._ready.set()
            return
        theirs.close()
        self._sock, self.pid = ours, proc.pid
        self._alive = True
        self._ready.set()
        try:
            while True:
                try:
                    msg = ours.recv(MESSAGE)
                except OSError:
                    break
                if not msg:
                    break
                self._dispatch(pickle.loads(msg))
        finally:
            self._gone()
            proc.wait()
            ours.close()

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "exit":
            _, pid, status, maxrss, utime, stime = msg
            usage = Usage(maxrss * 1024, utime, stime)  # ru_maxrss is in KiB on Linux
            code = os.waitstatus_to_exitcode(status)
            with self._lock:
                proc = self._procs.pop(pid, None)
                if proc is None:
                    self._early[pid] = (code, usage)
            if proc is not None:
                proc._ended(code, usage)
            return
        with self._lock:
            waiter = self._replies.pop(msg[1], None)
        if waiter is not None:
            waiter[1].append(msg)
            waiter[0].set()

    def _gone(self) -> None:
        """The launcher ended: its jobs died with it (PDEATHSIG), and no spawn waits forever."""
        with self._lock:
            self._alive = False
            procs, self._procs = list(self._procs.values()), {}
            waiters, self._replies = list(self._replies.values()), {}
        for proc in procs:
            proc._ended(-9, None)
        for event, box in waiters:
            box.append(("gone",))
            event.set()

    def launch(self, path: str, argv: Sequence[str], cwd: str | None, env: Mapping[str, str],
               rlimits: Sequence[tuple[int, int, int]], cgroup_procs: str | None) -> LaunchedProcess:
        """Start `path` with `argv` (exec semantics: no PATH search here) in a new session, its
        stdout and stderr on one new pipe."""
        r, w = os.pipe2(os.O_CLOEXEC)
        event, box = threading.Event(), list[tuple[Any, ...]]()
        try:
            with self._lock:
                if not self._alive or self._sock is None:
                    raise LaunchError("the launcher has ended")
                self._next += 1
                rid = self._next
                self._replies[rid] = (event, box)
            request = (rid, path, list(argv), cwd, dict(env), list(rlimits), cgroup_procs)
            try:
                with self._send_lock:
                    socket.send_fds(self._sock, [pickle.dumps(request)], [w])
            except OSError as e:
                with self._lock:
                    self._replies.pop(rid, None)
                raise LaunchError(f"cannot reach the launcher: {e}") from e
        finally:
            os.close(w)
        event.wait()
        reply = box[0]
        if reply[0] == "started":
            pid = reply[2]
            proc = LaunchedProcess(pid, os.fdopen(r, "rb"))
            with self._lock:
                early = self._early.pop(pid, None)
                if early is None:
                    self._procs[pid] = proc
            if early is not None:
                proc._ended(*early)
            return proc
        os.close(r)
        if reply[0] == "gone":
            raise LaunchError("the launcher ended during the start")
        _, _, stage, err = reply
        if stage == "cgroup":
            raise CgroupMoveFailed(f"cannot move the job into its cgroup: {os.strerror(err) if err else '?'}")
        raise OSError(err or errno.EIO, os.strerror(err or errno.EIO), path if stage == "exec" else cwd)


_resident: Launcher | None = None
_resident_lock = threading.Lock()
_refused = False  # it could not start here once: not tried again


def resident(environ: Mapping[str, str] = os.environ) -> Launcher | None:
    """The process's launcher, started on first use (and again if it died); None where it is
    turned off or cannot run (not Linux)."""
    global _resident, _refused
    if _refused or environ.get("RECONCILER_LAUNCHER", "").strip().lower() in _OFF \
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


def is_launcher(pid: int) -> bool:
    """Is this our live launcher (a child of ours that is no run's orphan)?"""
    launcher = _resident
    return launcher is not None and launcher.alive and launcher.pid == pid
