"""Every process a run started, found again and stopped; Linux only, degrading to the process group.

Where the machine lets us create cgroups (a writable cgroup v2 hierarchy holding our own cgroup),
each run gets a cgroup of its own: nothing the job starts can leave it, and `cgroup.kill` stops
all of it at once. Otherwise the reconciler becomes a child subreaper, so that what a job
orphans (a `setsid` daemon, a double fork) is reparented to us instead of init, and a run's
processes are its descendants, the members of its process group or session, and the orphans we
adopt that carry its marker or hold its output pipe.

The job's own process gets PR_SET_PDEATHSIG, so it is killed with the thread that started it even
when the reconciler is killed with SIGKILL. Where a run lives (`Whereabouts`) is recorded in the
ledger so that the next start can stop what a killed reconciler left behind.

The reconciler itself is never forked to start a job: `setpriv` and `sh` do the steps between fork
and exec, so Popen can use vfork (a Python `preexec_fn` forces a full fork of a large, threaded
process, holding the GIL). Without them, the same steps run in a `preexec_fn`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from reconciler.core.limits import Limits, Usage
from reconciler.kinds.launcher import CgroupMoveFailed, LaunchedProcess, Launcher, LaunchError, is_launcher, resident

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CGROUP_PREFIX = "reconciler-run-"
TRACK_EVERY = 1.0  # seconds between walks of a run's descendants (without a cgroup)
_OFF = frozenset(("0", "off", "no", "false"))


# ---- /proc ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stat:
    state: str
    ppid: int
    pgrp: int
    session: int
    ticks: str  # start time in clock ticks since boot: with the pid, the identity of a process


def stat(pid: int) -> Stat | None:
    """A process's /proc/PID/stat, or None when it is gone (or there is no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold anything
    if len(fields) < 20:
        return None
    return Stat(fields[0], int(fields[1]), int(fields[2]), int(fields[3]), fields[19])


def is_live(pid: int, ticks: str | None = None) -> bool:
    """The process exists, is not a zombie and (given `ticks`) is the same one as before."""
    st = stat(pid)
    return st is not None and st.state not in ("Z", "X") and (ticks is None or st.ticks == ticks)


def children(pid: int) -> list[int]:
    """Direct children of every thread of a process (needs CONFIG_PROC_CHILDREN, as on all distros)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            out.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return out


def has_marker(pid: int, marker: bytes) -> bool:
    """Does the process's initial environment hold `marker` (NAME=value) as one entry?"""
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def holds_pipe(pid: int, inode: int) -> bool:
    target = f"pipe:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
    return False


def all_pids() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


@functools.cache
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return prctl


@functools.cache
def become_subreaper() -> bool:
    """Orphans of our descendants come to us, not to init (once per process; it cannot be undone
    usefully while runs are live)."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


# ---- cgroups --------------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="surrogateescape")


def find_cgroup_parent() -> Path | None:
    """The directory of our own cgroup v2, where per-run cgroups can be created; None if none can.

    /sys/fs/cgroup is preferred; a hybrid host's /sys/fs/cgroup/unified works as well.
    """
    try:
        own = next((line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                    if line.startswith("0::")), None)
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    if own is None or ".." in own.split("/") or own.endswith(" (deleted)"):
        return None
    mounts = []
    for line in mountinfo:
        pre, sep, post = line.partition(" - ")
        fields = pre.split()
        if sep and post.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            mounts.append((_unescape(fields[3]), _unescape(fields[4])))
    mounts.sort(key=lambda m: m[1] != "/sys/fs/cgroup")
    for root, point in mounts:
        if own != root and not own.startswith(root.rstrip("/") + "/"):
            continue  # this mount shows another part of the hierarchy
        base = Path(point) / own[len(root):].lstrip("/")
        if _can_create_children(base):
            return base
    return None


def _can_create_children(base: Path) -> bool:
    probe = base / f"reconciler-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        return os.access(probe / "cgroup.procs", os.W_OK) and (probe / "cgroup.events").exists()
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def cgroup_pids(cgroup: Path) -> list[int]:
    try:
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def cgroup_kill(cgroup: Path) -> None:
    """SIGKILL to every process in the cgroup, atomically where the kernel has cgroup.kill (5.14)."""
    try:
        (cgroup / "cgroup.kill").write_text("1")
    except OSError:
        for pid in cgroup_pids(cgroup):
            send(pid, signal.SIGKILL)


def remove_cgroup(cgroup: Path, timeout: float = 2.0) -> bool:
    """Remove an emptied cgroup (waiting a little for exits in progress); False if it stays."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cgroup.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            if cgroup_pids(cgroup):
                cgroup_kill(cgroup)
            time.sleep(0.01)


@dataclass(frozen=True, slots=True)
class CgroupEnd:
    """What a run's cgroup counted, read just before it is removed."""

    usage: Usage
    oom_kills: int


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            out[key] = int(value)
    return out


def cgroup_end(cgroup: Path) -> CgroupEnd:
    cpu = _keyed(cgroup / "cpu.stat")
    peak = None
    with contextlib.suppress(OSError, ValueError):
        peak = int((cgroup / "memory.peak").read_text())  # Linux 5.19; absent without the controller
    return CgroupEnd(Usage(peak, cpu["user_usec"] / 1e6 if "user_usec" in cpu else None,
                           cpu["system_usec"] / 1e6 if "system_usec" in cpu else None),
                     _keyed(cgroup / "memory.events").get("oom_kill", 0))


def apply_cgroup_limits(cgroup: Path, limits: Limits | None) -> tuple[bool, bool]:
    """memory.max and pids.max where the controllers are delegated to the run's cgroup; which of
    the two the cgroup enforces (the rest is left to rlimits in the child)."""
    if limits is None:
        return False, False
    done = []
    for name, value in (("memory.max", limits.memory), ("pids.max", limits.processes)):
        ok = False
        if value is not None:
            with contextlib.suppress(OSError):
                (cgroup / name).write_text(str(value))
                ok = True
            if ok and name == "memory.max":
                with contextlib.suppress(OSError):
                    (cgroup / "memory.swap.max").write_text("0")  # over the limit is killed, not swapped
        done.append(ok)
    return done[0], done[1]


CPU_GRACE = 5  # seconds of CPU between SIGXCPU (the soft limit) and SIGKILL (the hard one)


def rlimit_args(limits: Limits | None, *, memory: bool = True, processes: bool = True) -> list[str]:
    """prlimit(1) options for what the cgroup does not enforce."""
    if limits is None:
        return []
    out = []
    if memory and limits.memory is not None:
        out.append(f"--as={limits.memory}")
    if limits.cpu_time is not None:
        out.append(f"--cpu={limits.cpu_time}:{limits.cpu_time + CPU_GRACE}")
    if limits.open_files is not None:
        out.append(f"--nofile={limits.open_files}")
    if processes and limits.processes is not None:
        out.append(f"--nproc={limits.processes}")
    return out


def _rlimits(args: Sequence[str]) -> list[tuple[int, int, int]]:
    """The same as (resource, soft, hard), for a child set up in Python."""
    import resource

    names = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "nofile": resource.RLIMIT_NOFILE,
             "nproc": resource.RLIMIT_NPROC}
    out = []
    for arg in args:
        name, _, value = arg[2:].partition("=")
        soft, _, hard = value.partition(":")
        out.append((names[name], int(soft), int(hard or soft)))
    return out


# ---- where a run lives ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """What the ledger keeps of a run's processes: enough to find them after a restart."""

    host: str
    boot: str
    pgid: int
    ticks: str | None
    cgroup: str | None

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> Whereabouts | None:
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(str(d["host"]), str(d["boot"]), int(d["pgid"]),
                       None if d.get("ticks") is None else str(d["ticks"]),
                       None if d.get("cgroup") is None else str(d["cgroup"]))
        except (ValueError, TypeError, KeyError):
            return None

    def here(self) -> bool:
        return self.host == socket.gethostname() and self.boot == boot_id()

    def run_cgroup(self) -> Path | None:
        """The run's cgroup, if it had one here: only a directory of the name we give (never a
        cgroup of someone else's, whatever the ledger says)."""
        if not self.cgroup or not self.here():
            return None
        path = Path(self.cgroup)
        return path if path.is_absolute() and path.name.startswith(CGROUP_PREFIX) else None


# A run's main process: our child (Popen) or the resident launcher's (kinds/launcher.py).
Proc = subprocess.Popen[bytes] | LaunchedProcess


class Supervisor:
    """Starts jobs so that everything they start can be stopped; one per reconciler process."""

    def __init__(self, cgroup_parent: Path | None) -> None:
        self.cgroup_parent = cgroup_parent

    @classmethod
    def detect(cls, environ: Mapping[str, str] = os.environ) -> Supervisor:
        """A cgroup per run where possible; RECONCILER_CGROUP=off forces the process-group way."""
        if environ.get("RECONCILER_CGROUP", "").strip().lower() in _OFF:
            return cls(None)
        return cls(find_cgroup_parent())

    def spawn(self, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str],
              marker: str | None = None, limits: Limits | None = None) -> RunProcesses:
        """Start a job in a new session (its own process group), stdout and stderr on one pipe,
        within its limits (the cgroup's where it has the controllers, rlimits in the child else)."""
        n = _spawns.begin()
        try:
            return self._spawn(argv, cwd=cwd, env=env, marker=marker, limits=limits)
        finally:
            _spawns.end(n)

    def _spawn(self, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str],
               marker: str | None, limits: Limits | None) -> RunProcesses:
        remote = resident()
        if remote is not None:
            with contextlib.suppress(LaunchError):  # it ended meanwhile: the way without it, this once
                return self._spawn_remote(remote, argv, cwd=cwd, env=env, marker=marker, limits=limits)
        launcher: tuple[str, ...] | None = _launcher()
        if limits and launcher is not None:
            prlimit = _prlimit()
            # Without prlimit, rlimits can only be set between fork and exec: the Python way.
            launcher = (*launcher[:2], prlimit) if prlimit is not None else None
        if self.cgroup_parent is not None:
            cgroup = self.cgroup_parent / f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            try:
                cgroup.mkdir()
                procs_fd = os.open(cgroup / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                with contextlib.suppress(OSError):
                    cgroup.rmdir()
                self.cgroup_parent = None  # no longer allowed here: the process-group way from now on
            else:
                try:
                    by_cgroup = apply_cgroup_limits(cgroup, limits)
                    rl = rlimit_args(limits, memory=not by_cgroup[0], processes=not by_cgroup[1])
                    if launcher is None:
                        proc = self._popen(argv, cwd, env, procs_fd, rl)
                    else:
                        proc = _launch(launcher, argv, cwd, env, procs_fd, rl)
                except subprocess.SubprocessError:  # moving into the cgroup failed
                    self.cgroup_parent = None
                except BaseException:
                    remove_cgroup(cgroup)
                    raise
                else:
                    return RunProcesses(proc, cgroup, marker, limits, memory_by_cgroup=by_cgroup[0])
                finally:
                    os.close(procs_fd)
                remove_cgroup(cgroup)
        become_subreaper()
        rl = rlimit_args(limits)
        if launcher is not None:
            return RunProcesses(_launch(launcher, argv, cwd, env, None, rl), None, marker, limits)
        return RunProcesses(self._popen(argv, cwd, env, None, rl), None, marker, limits)

    def _spawn_remote(self, remote: Launcher, argv: Sequence[str], *, cwd: str | None, env: Mapping[str, str],
                      marker: str | None, limits: Limits | None) -> RunProcesses:
        """Through the resident launcher (kinds/launcher.py): a fork of a small process, one exec."""
        # What Popen refuses before it starts anything, refused the same way.
        if any("\0" in a for a in argv) or "\0" in (cwd or "") or any("\0" in k or "\0" in v for k, v in env.items()):
            raise ValueError("embedded null byte")
        if any("=" in k for k in env):
            raise ValueError("illegal environment variable name")
        if cwd is not None and not os.path.isdir(cwd):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), cwd)
        program = _executable(argv[0], cwd, env)
        path = program if os.path.isabs(program) else os.path.join(os.path.abspath(cwd or os.getcwd()), program)
        if self.cgroup_parent is not None:
            cgroup = self.cgroup_parent / f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            try:
                cgroup.mkdir()
            except OSError:
                self.cgroup_parent = None  # no longer allowed here: the process-group way from now on
            else:
                try:
                    by_cgroup = apply_cgroup_limits(cgroup, limits)
                    rl = _rlimits(rlimit_args(limits, memory=not by_cgroup[0], processes=not by_cgroup[1]))
                    proc = remote.launch(path, argv, cwd, env, rl, str(cgroup / "cgroup.procs"))
                except CgroupMoveFailed:
                    self.cgroup_parent = None
                except BaseException:
                    remove_cgroup(cgroup)
                    raise
                else:
                    return RunProcesses(proc, cgroup, marker, limits, memory_by_cgroup=by_cgroup[0])
                remove_cgroup(cgroup)
        become_subreaper()
        return RunProcesses(remote.launch(path, argv, cwd, env, _rlimits(rlimit_args(limits)), None), None,
                            marker, limits)

    @staticmethod
    def _popen(argv: Sequence[str], cwd: str | None, env: Mapping[str, str],
               procs_fd: int | None, rlimits: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """Without setpriv and sh: the same steps in Python between fork and exec (a full fork of
        the reconciler, holding the GIL, for every run)."""
        return subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_child_setup(procs_fd, _prctl(), os.getpid(), _rlimits(rlimits)))


# In the child, before the job: PDEATHSIG is set (setpriv), then a reconciler that died before that
# took effect is noticed ($PPID), then, with a cgroup, the parent's word that the move into it is
# done is awaited on stdin (so the job cannot fork before it is inside), then the job replaces the
# shell. setpriv and sh are exec'd, never a fork of the reconciler: Popen can use vfork.
_SCRIPT = ('[ "$PPID" = "$1" ] || kill -9 $$; '
           'if [ "$2" = wait ]; then read -r go && [ "$go" = go ] || exit 125; fi; '
           '[ "$3" = pwd ] || unset PWD; shift 3; exec "$@" </dev/null')  # sh sets PWD: the job gets only its own


@functools.cache
def _prlimit() -> str | None:
    """prlimit(1) (util-linux), which sets rlimits and execs the job: no fork of ours does it."""
    return shutil.which("prlimit")


@functools.cache
def _launcher() -> tuple[str, str] | None:
    """Absolute paths of setpriv (with --pdeathsig, util-linux 2.33) and sh, or None to set the
    job up in Python instead."""
    setpriv, sh = shutil.which("setpriv"), shutil.which("sh")
    if not setpriv or not sh or not sys.platform.startswith("linux"):
        return None
    try:
        ok = subprocess.run([setpriv, "--pdeathsig", "KILL", "--", sh, "-c", "exit 0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return None
    return (setpriv, sh) if ok else None


def _executable(program: str, cwd: str | None, env: Mapping[str, str]) -> str:
    """The file exec will run, as Popen would find it; the OSError Popen would raise if none."""
    if "\0" in program:
        raise ValueError("embedded null byte")
    if os.path.dirname(program):  # as given: exec resolves it in the job's working directory, as Popen does
        found = program if os.path.isabs(program) else os.path.join(os.path.abspath(cwd or os.getcwd()), program)
        if not os.path.isfile(found):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if not os.access(found, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return program
    candidates = [os.path.join(d, program) for d in os.get_exec_path(dict(env))]
    denied = None
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = path
    if denied is not None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), denied)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _launch(launcher: tuple[str, ...], argv: Sequence[str], cwd: str | None, env: Mapping[str, str],
            procs_fd: int | None, rlimits: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    setpriv, sh = launcher[:2]
    # With limits, prlimit sets them and execs the job: the same process, after the move into the cgroup.
    wrap = [launcher[2], *rlimits, "--"] if rlimits and len(launcher) > 2 else []
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), cwd)
    program = _executable(argv[0], cwd, env)
    go = None
    if procs_fd is not None:
        go_r, go = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            [setpriv, "--pdeathsig", "KILL", "--", sh, "-c", _SCRIPT, "sh", str(os.getpid()),
             "wait" if go is not None else "-", "pwd" if "PWD" in env else "-", *wrap, program, *argv[1:]],
            cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL if go is None else go_r,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if go is not None:
            os.close(go_r)
    if go is None or procs_fd is None:
        return proc
    try:
        os.write(procs_fd, str(proc.pid).encode())
        os.write(go, b"go\n")
    except OSError as e:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        raise subprocess.SubprocessError(f"cannot move the job into its cgroup: {e}") from e
    finally:
        os.close(go)
    return proc


def _child_setup(procs_fd: int | None, prctl: Callable[..., int] | None, parent: int,
                 rlimits: Sequence[tuple[int, int, int]] = ()) -> Callable[[], None]:
    """Runs in the child between fork and exec: no locks, no imports, nothing that allocates much."""
    import resource

    def setup() -> None:
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if procs_fd is not None:
            os.write(procs_fd, b"0")  # into the run's cgroup before anything else can fork
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the reconciler died before the line above took effect
                os.kill(os.getpid(), signal.SIGKILL)
    return setup


class _Scans:
    """The children of every thread of this process, read at most once at a time and shared: a
    caller gets a scan that began after it asked (so it sees every orphan reparented before), and
    the callers that asked during one scan share the next instead of each reading all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._begun = 0
        self._asked = 0
        self._result: list[int] = []

    def scan(self) -> list[int]:
        with self._lock:
            self._asked += 1
            ticket = self._asked
        with _scan_lock:
            with self._lock:
                if self._begun >= ticket:
                    return self._result
                self._begun = self._asked
            result = children(os.getpid())
            with self._lock:
                self._result = result
            return result


_scan_lock = threading.Lock()
_our_children = _Scans()
# The main process of every run not yet closed: our own children, never another run's orphan.
_mains: dict[int, Proc] = {}
_mains_lock = threading.Lock()


class _Spawns:
    """The spawns in progress, so that their children can be told from orphans."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._begun = 0
        self._running: set[int] = set()

    def begin(self) -> int:
        with self._cond:
            self._begun += 1
            self._running.add(self._begun)
            return self._begun

    def end(self, n: int) -> None:
        with self._cond:
            self._running.discard(n)
            self._cond.notify_all()

    def settled(self, timeout: float) -> None:
        """Wait until every spawn begun before now has ended (or `timeout` has passed)."""
        with self._cond:
            upto = self._begun
            self._cond.wait_for(lambda: all(n > upto for n in self._running), timeout)


_spawns = _Spawns()


def _is_main(pid: int) -> bool:
    with _mains_lock:
        proc = _mains.get(pid)
    return (proc is not None and proc.returncode is None) or is_launcher(pid)


class RunProcesses:
    """The processes of one run: its main process (a Popen) and whatever descends from it."""

    def __init__(self, proc: Proc, cgroup: Path | None, marker: str | None,
                 limits: Limits | None = None, *, memory_by_cgroup: bool = False) -> None:
        self.proc = proc
        self.cgroup = cgroup
        self.limits = limits
        self.memory_by_cgroup = memory_by_cgroup
        self.cgroup_end: CgroupEnd | None = None  # read as the run's cgroup is removed
        self.rusage: Usage | None = None  # the main process's, once it is reaped by wait4
        self._marker = marker.encode() if marker else None
        first = stat(proc.pid)
        self._ticks = first.ticks if first else None
        self._known: dict[int, str] = {proc.pid: self._ticks} if self._ticks else {}
        self._pipe = os.fstat(proc.stdout.fileno()).st_ino if proc.stdout is not None else None
        self._next_track = time.monotonic() + 0.05
        with _mains_lock:
            _mains[proc.pid] = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def whereabouts(self) -> Whereabouts:
        return Whereabouts(socket.gethostname(), boot_id(), self.proc.pid, self._ticks,
                           str(self.cgroup) if self.cgroup else None)

    # ---- finding them -------------------------------------------------------------------------------

    def next_track(self) -> float | None:
        """When `track` wants to run next (monotonic), or None when it never needs to."""
        return None if self.cgroup is not None else self._next_track

    def track(self, now: float) -> None:
        """Without a cgroup: note the descendants now, so that they are known once orphaned."""
        if self.cgroup is None and now >= self._next_track:
            self._walk(self._live_known())
            self._next_track = now + TRACK_EVERY

    def _live_known(self) -> list[int]:
        main_gone = self.proc.returncode is not None  # reaped: its pid may be someone else's now
        return [p for p, t in self._known.items() if not (main_gone and p == self.proc.pid) and is_live(p, t)]

    def _walk(self, roots: Iterable[int]) -> None:
        todo = list(roots)
        for _ in range(100_000):  # bounded: a fork bomb cannot keep us here
            if not todo:
                break
            for child in children(todo.pop()):
                if child not in self._known and (st := stat(child)) is not None:
                    self._known[child] = st.ticks
                    todo.append(child)

    def _adopt(self) -> None:
        """Orphans reparented to us (the subreaper) that are this run's: already known, in its
        session or process group, holding its output pipe, or carrying its marker."""
        me = os.getpid()
        found = []
        for pid in _our_children.scan():
            if pid == self.proc.pid or pid in self._known or _is_main(pid):
                continue
            st = stat(pid)
            if st is None or st.ppid != me or (self._ticks and int(st.ticks) < int(self._ticks)):
                continue
            if (st.session == self.proc.pid or st.pgrp == self.proc.pid
                    or (self._marker is not None and has_marker(pid, self._marker))
                    or (self._pipe is not None and holds_pipe(pid, self._pipe) and self._holds_after_spawns(pid))):
                self._known[pid] = st.ticks
                found.append(pid)
        self._walk(found)

    def _holds_after_spawns(self, pid: int) -> bool:
        """A run being started holds copies of all our descriptors, this run's pipe among them,
        until it execs: it is another run's main process, not an orphan of this one."""
        _spawns.settled(2.0)
        return not _is_main(pid) and self._pipe is not None and holds_pipe(pid, self._pipe)

    def members(self) -> list[int]:
        """Every live process of the run, the main one included while it runs."""
        if self.cgroup is not None:
            pids = cgroup_pids(self.cgroup)
            for pid in pids:  # noted, to be reaped if they die as our children (when we are a subreaper)
                if pid not in self._known and (st := stat(pid)) is not None:
                    self._known[pid] = st.ticks
            return pids
        self._walk(self._live_known())
        self._adopt()
        return self._live_known()

    # ---- stopping them ------------------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        """Signal the whole run: the process group at once, then every member we know of."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL and self.cgroup is not None:
            cgroup_kill(self.cgroup)
            return
        for pid in self.members():
            send(pid, sig)

    def close(self, timeout: float = 2.0) -> None:
        """Kill whatever is left (the main process has exited or is killed too), wait for it to go,
        and clean up: adopted zombies reaped, the cgroup removed."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.members()
            if self.proc.returncode is None:
                left.append(self.proc.pid)
            if not left or time.monotonic() >= deadline:
                break
            self.signal(signal.SIGKILL)
            if self.proc.returncode is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.01)
            else:
                time.sleep(0.01)
            self._reap()
        self._reap()
        with _mains_lock:
            if _mains.get(self.proc.pid) is self.proc:
                del _mains[self.proc.pid]
        if self.cgroup is not None:
            if self.cgroup_end is None:
                self.cgroup_end = cgroup_end(self.cgroup)
            remove_cgroup(self.cgroup, max(0.1, deadline - time.monotonic()))

    def _reap(self) -> None:
        """Adopted orphans are our children now: reap the ones that ended (never the main one,
        which Popen reaps)."""
        me = os.getpid()
        for pid in list(self._known):
            if pid == self.proc.pid:
                continue
            st = stat(pid)
            if st is not None and st.ppid == me and st.state == "Z" and st.ticks == self._known[pid]:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)


# ---- after a restart ------------------------------------------------------------------------------


def leftovers(where: Whereabouts, marker: str) -> list[tuple[int, str]]:
    """Processes a run of a dead reconciler left on this host: its cgroup's, and the members of its
    process group or session that started no earlier than it and carry its marker (so that a
    reused process group id is never taken for it)."""
    if not where.here():
        return []
    found: dict[int, str] = {}
    if (cgroup := where.run_cgroup()) is not None:
        for pid in cgroup_pids(cgroup):
            if (st := stat(pid)) is not None:
                found[pid] = st.ticks
    wanted = marker.encode()
    for pid in all_pids():
        st = stat(pid)
        if (st is None or pid in found or where.pgid not in (st.pgrp, st.session) or st.state in ("Z", "X")
                or (where.ticks is not None and int(st.ticks) < int(where.ticks))):
            continue
        if has_marker(pid, wanted):
            found[pid] = st.ticks
    return sorted(found.items())


def discard(where: Whereabouts) -> None:
    """Remove the (empty) cgroup of a run whose processes are all gone."""
    if (cgroup := where.run_cgroup()) is not None:
        remove_cgroup(cgroup, 0.5)


def stop_leftovers(found: Mapping[int, tuple[Whereabouts, list[tuple[int, str]]]], grace: float) -> dict[int, str]:
    """Stop the leftovers of several runs as a timeout stops a job (SIGTERM, `grace`, SIGKILL), all
    at once; what happened to each run's, in words."""
    for _, pids in found.values():
        for pid, ticks in pids:
            if is_live(pid, ticks):
                send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace

    def live(pids: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [(p, t) for p, t in pids if is_live(p, t)]

    while time.monotonic() < deadline and any(live(pids) for _, pids in found.values()):
        time.sleep(0.02)
    killed: set[int] = set()
    for run_id, (where, pids) in found.items():
        rest = live(pids)
        if rest:
            killed.add(run_id)
            for pid, _ in rest:
                send(pid, signal.SIGKILL)
        if (cgroup := where.run_cgroup()) is not None:
            if cgroup_pids(cgroup):
                killed.add(run_id)
            remove_cgroup(cgroup)
    until = time.monotonic() + 2.0  # SIGKILL is not instant: gone means gone when we return
    while time.monotonic() < until and any(live(pids) for _, pids in found.values()):
        time.sleep(0.01)
    out = {}
    for run_id, (_, pids) in found.items():
        n = len(pids)
        what = f"{n} process{'es' if n != 1 else ''} it left {'were' if n != 1 else 'was'} still running"
        how = f"killed (SIGKILL after {grace:g}s)" if run_id in killed else "stopped (SIGTERM)"
        out[run_id] = f"{what} and {'were' if n != 1 else 'was'} {how}"
    return out
