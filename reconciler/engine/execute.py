"""Executing one attempt: a command with everything it starts (see procs), or an HTTP call.
No ledger here."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.core.durations import format_duration
from reconciler.core.model import CommandRun, EnvValue, HttpRun
from reconciler.engine.procs import RunProcesses, Supervisor

OUTPUT_CAP = 64 * 1024
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out or stopped job
DRAIN_AFTER_EXIT = 1.0  # at most this long for the last output once every process of the run is gone
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
REDACTED = "[redacted]"
REDACTED_BYTES = REDACTED.encode()


class SecretError(Exception):
    """A `from_env`/`from_file` value could not be read at run time."""


def resolve(values: tuple[tuple[str, EnvValue], ...], environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Values for a run, and the secret ones among them (to redact from output)."""
    out, secrets = {}, []
    for name, v in values:
        if v.literal is not None:
            out[name] = v.literal
            continue
        if v.from_env is not None:
            if v.from_env not in environ:
                raise SecretError(f"{name}: environment variable {v.from_env} is not set")
            value = environ[v.from_env]
        else:
            assert v.from_file is not None
            try:
                value = Path(v.from_file).read_text().rstrip("\n")
            except OSError as e:
                raise SecretError(f"{name}: cannot read {v.from_file}: {e.strerror}") from e
        out[name] = value
        secrets.append(value)
    return out, secrets


class Redactor:
    """Replaces secret values in a stream of bytes, also where a value is split between chunks."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        # Longest first: where two values start at one place, the longer one is hidden whole.
        self._pattern = re.compile(b"|".join(re.escape(v) for v in values)) if values else None
        self._hold = len(values[0]) - 1 if values else 0
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """What can be let through now; the last bytes wait while they may start a secret."""
        if self._pattern is None:
            return chunk
        data = self._pending + chunk
        # A match starting before `limit` is decided: even the longest value fits in `data`.
        limit = len(data) - self._hold
        out = bytearray()
        pos = 0
        while (m := self._pattern.search(data, pos)) is not None and m.start() < limit:
            out += data[pos:m.start()] + REDACTED_BYTES
            pos = m.end()
        keep = max(pos, limit)
        out += data[pos:keep]
        self._pending = data[keep:]
        return bytes(out)

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return self._pattern.sub(REDACTED_BYTES, data) if self._pattern is not None else data


def redact(text: str, secrets: Iterable[str]) -> str:
    """Secret values out of a message, also as `repr` would have quoted them (exceptions do)."""
    forms = {f for s in secrets if s for f in (s, repr(s)[1:-1], repr(s.encode())[2:-1]) if f}
    for f in sorted(forms, key=len, reverse=True):
        text = text.replace(f, REDACTED)
    return text


class CappedBuffer:
    """Keeps the head and the tail of a stream, and counts what was dropped between them.

    Secrets are redacted before the cut, so that no part of one is kept at either edge.
    """

    def __init__(self, cap: int = OUTPUT_CAP, secrets: Iterable[str] = ()) -> None:
        self.head_cap, self.tail_cap = cap // 2, cap - cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self._redactor = Redactor(secrets)

    def write(self, chunk: bytes) -> None:
        self._keep(self._redactor.feed(chunk))

    def _keep(self, chunk: bytes) -> None:
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.tail_cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        self._keep(self._redactor.flush())
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        return head + (f"\n[... {self.dropped} bytes dropped ...]\n" if self.dropped else "") + tail


@dataclass
class Attempt:
    """The outcome of one execution, before it is written to the ledger."""

    status: str  # succeeded | failed | timed_out | cancelled | interrupted
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    output: str = ""
    dropped: int = 0


@dataclass
class Handle:
    """A running attempt that can be stopped from another thread (replace, shutdown)."""

    stop_reason: str | None = None
    why: str | None = None  # said in the run's error when it was stopped
    kill_after: float = KILL_GRACE  # seconds from SIGTERM to SIGKILL once stopped
    # Called with where the run's processes live (JSON) once they started: the ledger keeps it.
    on_started: Callable[[str], None] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _wake: int | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stop(self, reason: str, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
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


def run_command(spec: CommandRun, extra_env: Mapping[str, str], environ: Mapping[str, str],
                handle: Handle, cap: int = OUTPUT_CAP, supervisor: Supervisor | None = None) -> Attempt:
    try:
        env_values, secrets = resolve(spec.env, environ)
    except SecretError as e:
        return Attempt("failed", error=str(e))
    env = {k: environ[k] for k in BASE_ENV if k in environ}
    env.update(env_values)
    env.update(extra_env)
    run_id = extra_env.get("RECONCILER_RUN_ID")
    try:
        procs = (supervisor or default_supervisor()).spawn(
            spec.argv, cwd=spec.workdir, env=env, marker=f"RECONCILER_RUN_ID={run_id}" if run_id else None)
    except Exception as e:  # a NUL in an argument, a missing program or workdir: the run fails, not the worker
        reason = (e.strerror or str(e)) if isinstance(e, OSError) else str(e) or type(e).__name__
        return Attempt("failed", error=redact(f"cannot start {_printable(spec.argv[0])}: {_printable(reason)}",
                                              secrets))
    try:
        if handle.on_started is not None:
            handle.on_started(procs.whereabouts().dumps())
        return _supervise(procs, spec, handle, CappedBuffer(cap, secrets))
    finally:
        procs.close()
        if procs.proc.stdout is not None:
            procs.proc.stdout.close()


def _supervise(procs: RunProcesses, spec: CommandRun, handle: Handle, buf: CappedBuffer) -> Attempt:
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
    pidfd = _pidfd(proc.pid)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)  # readable when the main process exits
    handle._attach(wake_w)
    deadline = time.monotonic() + spec.timeout.total_seconds()
    ending: str | None = None  # why we stopped it: "timeout" or "stop"
    term_at = 0.0
    killed, reading = False, True
    try:
        while proc.poll() is None:
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
        return Attempt(handle.stop_reason or "cancelled", exit_code=code,
                       error=f"{handle.why}: {said}" if handle.why else said, output=output, dropped=dropped)
    if ending == "timeout":
        return Attempt("timed_out", exit_code=code, error=f"timed out after {format_duration(spec.timeout)}",
                       output=output, dropped=dropped)
    if code == 0:
        return Attempt("succeeded", exit_code=0, output=output, dropped=dropped)
    return Attempt("failed", exit_code=code, error=_ended(code), output=output, dropped=dropped)


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


def _printable(text: str) -> str:
    """Control characters (a NUL, a newline) shown escaped, never written into a message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@functools.cache
def default_supervisor() -> Supervisor:
    """One per process: what the machine allows does not change while we run."""
    return Supervisor.detect()


def run_http(spec: HttpRun, extra_headers: Mapping[str, str], environ: Mapping[str, str],
             cap: int = OUTPUT_CAP) -> Attempt:
    try:
        headers, secrets = resolve(spec.headers, environ)
    except SecretError as e:
        return Attempt("failed", error=str(e))
    headers.update(extra_headers)
    try:
        attempt = _http(spec, headers, CappedBuffer(cap, secrets))
    except Exception as e:  # a URL or header the client refuses, a redirect it cannot parse: the run fails
        import httpx

        if isinstance(e, httpx.TimeoutException):
            return Attempt("timed_out", error=f"timed out after {format_duration(spec.timeout)}")
        # Only a client's message can quote a header value: say it without the secrets.
        return Attempt("failed", error=redact(f"HTTP request failed: {type(e).__name__}: {_printable(str(e))}",
                                              secrets))
    return attempt


def _http(spec: HttpRun, headers: dict[str, str], buf: CappedBuffer) -> Attempt:
    import httpx

    kwargs: dict[str, object] = {"headers": headers}
    if spec.has_json:
        kwargs["json"] = spec.json_body
    elif spec.body is not None:
        kwargs["content"] = spec.body.encode()
    deadline = time.monotonic() + spec.timeout.total_seconds()
    url, host = spec.url, urlsplit(spec.url).netloc
    with httpx.Client(timeout=spec.timeout.total_seconds(), follow_redirects=False) as client:
        for _ in range(6):
            left = deadline - time.monotonic()
            if left <= 0:
                return Attempt("timed_out", error=f"timed out after {format_duration(spec.timeout)}")
            with client.stream(spec.method, url, timeout=left, **kwargs) as response:  # type: ignore[arg-type]
                if response.is_redirect and "location" in response.headers:
                    target = response.url.join(response.headers["location"])
                    if target.netloc.decode() != host:
                        return Attempt("failed", http_status=response.status_code,
                                       error=f"refused redirect to another host: {_printable(target.host)}")
                    url = str(target)
                    continue
                for chunk in response.iter_bytes():
                    buf.write(chunk)
                    if time.monotonic() > deadline:
                        return Attempt("timed_out", http_status=response.status_code,
                                       error=f"timed out after {format_duration(spec.timeout)}",
                                       output=buf.text(), dropped=buf.dropped)
                status = response.status_code
                ok = status in spec.expect_status if spec.expect_status else 200 <= status < 300
                return Attempt("succeeded" if ok else "failed", http_status=status,
                               error=None if ok else f"unexpected HTTP status {status}",
                               output=buf.text(), dropped=buf.dropped)
        return Attempt("failed", error="too many redirects")
