"""The resident launcher's own process: started once by the reconciler (see kinds/launcher.py), run
by path with `python -I -S`, so it imports the standard library only and stays small.

It forks each job from its own small, single-threaded address space (a fork of the reconciler would
copy the page tables of a large, threaded process and hold its GIL). The child does what setpriv
and sh did: a new session, the run's rlimits, the move into the run's cgroup before the job runs,
PDEATHSIG with a check that the launcher still lives, default signal dispositions, stdin from
/dev/null and stdout and stderr on the run's pipe; then it execs the job. The launcher reaps its
jobs and reports each exit with its resource usage.

Messages (pickled, one per SOCK_SEQPACKET datagram), reconciler to launcher:
  (request_id, path, argv, cwd, env, rlimits, cgroup_procs) with the run's pipe as the one fd;
launcher to reconciler:
  ("started", request_id, pid) | ("failed", request_id, stage, errno) |
  ("exit", pid, wait_status, maxrss_kib, user_seconds, system_seconds).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import select
import signal
import socket
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
# What a job must not inherit: Python ignores SIGPIPE and SIGXFSZ, and the launcher ignores the
# signals meant for the reconciler (a ^C or a SIGTERM to its process group must not end it first).
RESET = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
         signal.SIGCHLD)
MESSAGE = 1 << 20


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    parent = int(sys.argv[2])
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the reconciler died before the line above took effect
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    # Jobs forked and not yet exec'd, by the read end of their close-on-exec pipe: many start at
    # once (the launcher never waits for one child's exec), and each is answered at its exec.
    starting: dict[int, _Starting] = {}
    by_pid: dict[int, _Starting] = {}
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                while True:
                    try:
                        if not os.read(wake_r, 4096):
                            break
                    except BlockingIOError:
                        break
            elif fd in starting:
                one = starting[fd]
                chunk = os.read(fd, 4096)
                if chunk:
                    one.error += chunk
                    continue
                poller.unregister(fd)
                os.close(fd)
                del starting[fd]
                del by_pid[one.pid]
                _answer(sock, one)
            elif fd == sock.fileno():
                msg, fds, _, _ = socket.recv_fds(sock, MESSAGE, 4)
                if not msg:
                    return  # the reconciler closed its end: it is gone, and so are its runs
                try:
                    one = _launch(pickle.loads(msg), fds, me, prctl)
                finally:
                    for passed in fds:
                        os.close(passed)
                starting[one.fd] = by_pid[one.pid] = one
                poller.register(one.fd, select.POLLIN)
        _reap(sock, by_pid)


class _Starting:
    def __init__(self, rid: int, pid: int, fd: int) -> None:
        self.rid, self.pid, self.fd = rid, pid, fd
        self.error = b""
        self.status: tuple[object, ...] | None = None  # its exit, when it came before its exec was seen


def _answer(sock: socket.socket, one: _Starting) -> None:
    if not one.error:
        sock.send(pickle.dumps(("started", one.rid, one.pid)))
        if one.status is not None:  # the exit follows its start, as the reconciler expects
            sock.send(pickle.dumps(one.status))
        return
    if one.status is None:
        os.waitpid(one.pid, 0)  # never reported as a job's exit: it never ran
    stage, err = pickle.loads(one.error)
    sock.send(pickle.dumps(("failed", one.rid, stage, err)))


def _reap(sock: socket.socket, by_pid: dict[int, _Starting]) -> None:
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        report = ("exit", pid, status, ru.ru_maxrss, ru.ru_utime, ru.ru_stime)
        if pid in by_pid:
            by_pid[pid].status = report
        else:
            sock.send(pickle.dumps(report))


Request = tuple[int, str, list[str], "str | None", dict[str, str], list[tuple[int, int, int]], "str | None"]


def _launch(request: Request, fds: list[int], me: int, prctl: Callable[..., int]) -> _Starting:
    rid, path, argv, cwd, env, rlimits, cgroup_procs = request
    out = fds[0]
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        stage = "setup"
        try:
            os.close(r)
            os.setsid()
            for which, soft, hard in rlimits:
                resource.setrlimit(which, (soft, hard))
            if cgroup_procs is not None:  # before the job can fork: nothing of it escapes the cgroup
                stage = "cgroup"
                fd = os.open(cgroup_procs, os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)
                stage = "setup"
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != me:
                os.kill(os.getpid(), signal.SIGKILL)
            for sig in RESET:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            if cwd is not None:
                stage = "cwd"
                os.chdir(cwd)
            stage = "setup"
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, w)
            os.closerange(w + 1, 1 << 20)
            stage = "exec"
            os.execve(path, argv, env)
        except OSError as e:
            os.write(w, pickle.dumps((stage, e.errno or 0)))
        except BaseException:
            os.write(w, pickle.dumps((stage, 0)))
        os._exit(127)
    os.close(w)
    return _Starting(rid, pid, r)

if __name__ == "__main__":
    main()
