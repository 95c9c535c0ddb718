"""The resident launcher's own process: started once by the reconciler (see kinds/launcher.py), run
by path with `python -I -S`, so it imports the standard library only and stays small.

It forks each job from its own small, single-threaded address space (a fork of the reconciler would
copy the page tables of a large, threaded process and hold its GIL). The child does what setpriv
and sh did: a new session, the run's rlimits, the move into the run's cgroup before the job runs,
PDEATHSIG with a check that the launcher still lives, default signal dispositions, stdin from
/dev/null and stdout and stderr on the run's pipe; then it execs the job. The launcher reaps its
jobs and reports each exit with its resource usage.

Requests (pickled, one per SOCK_SEQPACKET datagram) come with two descriptors, the run's output
pipe and its answer pipe: (path, argv, cwd, env, rlimits, cgroup_procs). The answer pipe carries
one line at the job's exec, "started PID" or "failed STAGE ERRNO", then, once the job is reaped,
"exit WAIT_STATUS MAXRSS_KIB USER_SECONDS SYSTEM_SECONDS"; it is closed after that (or when the
launcher dies), so the thread that started the run reads its run's news itself.
"""

from __future__ import annotations

import contextlib
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
NOFILE = (-1, -1)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    global NOFILE
    NOFILE = (soft, hard)  # what its jobs get, as they would from the reconciler
    if soft != hard:  # it holds a descriptor per running job: as many as it may
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    # Jobs forked and not yet exec'd, by the read end of their close-on-exec pipe: many start at
    # once (the launcher never waits for one child's exec), and each is answered at its exec.
    starting: dict[int, _Job] = {}
    jobs: dict[int, _Job] = {}  # by pid, until reaped
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
                one.execd = True
                if one.error:
                    del jobs[one.pid]
                    if one.status is None:
                        os.waitpid(one.pid, 0)  # never reported as a job's exit: it never ran
                    stage, err = pickle.loads(one.error)
                    _tell(one, f"failed {stage} {err}\n", last=True)
                else:
                    _tell(one, f"started {one.pid}\n", last=False)
                    if one.status is not None:  # it exited before its exec was seen here
                        del jobs[one.pid]
                        _tell(one, one.status, last=True)
            elif fd == sock.fileno():
                msg, fds, _, _ = socket.recv_fds(sock, MESSAGE, 4)
                if not msg:
                    return  # the reconciler is gone, by any death: so are its runs (PDEATHSIG)
                if len(fds) != 2:
                    for passed in fds:
                        os.close(passed)
                    continue
                try:
                    one = _launch(pickle.loads(msg), fds[0], fds[1], me, prctl)
                finally:
                    os.close(fds[0])
                starting[one.fd] = jobs[one.pid] = one
                poller.register(one.fd, select.POLLIN)
        _reap(jobs)


class _Job:
    def __init__(self, pid: int, fd: int, answer: int) -> None:
        self.pid, self.fd, self.answer = pid, fd, answer
        self.error = b""
        self.execd = False
        self.status: str | None = None  # its exit, when it came before its exec was seen


def _tell(one: _Job, line: str, *, last: bool) -> None:
    with contextlib.suppress(OSError):  # the reconciler gave the run up: it has nobody to tell
        os.write(one.answer, line.encode())
    if last:
        os.close(one.answer)


def _reap(jobs: dict[int, _Job]) -> None:
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        one = jobs.get(pid)
        if one is None:
            continue
        line = f"exit {status} {ru.ru_maxrss} {ru.ru_utime!r} {ru.ru_stime!r}\n"
        if one.execd:
            del jobs[pid]
            _tell(one, line, last=True)
        else:
            one.status = line


Request = tuple[str, list[str], "str | None", dict[str, str], list[tuple[int, int, int]], "str | None"]


def _launch(request: Request, out: int, answer: int, me: int, prctl: Callable[..., int]) -> _Job:
    path, argv, cwd, env, rlimits, cgroup_procs = request
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        stage = "setup"
        try:
            os.close(r)
            os.setsid()
            if NOFILE[0] != NOFILE[1]:
                resource.setrlimit(resource.RLIMIT_NOFILE, NOFILE)
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
    return _Job(pid, r, answer)

if __name__ == "__main__":
    main()
