"""Executing one attempt: a command in its own process group, or an HTTP call. No ledger here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.core.durations import format_duration
from reconciler.core.model import CommandRun, EnvValue, HttpRun

OUTPUT_CAP = 64 * 1024
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out or stopped job
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
REDACTED = "[redacted]"


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


class CappedBuffer:
    """Keeps the head and the tail of a stream, and counts what was dropped between them."""

    def __init__(self, cap: int = OUTPUT_CAP) -> None:
        self.head_cap, self.tail_cap = cap // 2, cap - cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
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

    def text(self, secrets: list[str]) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        text = head + (f"\n[... {self.dropped} bytes dropped ...]\n" if self.dropped else "") + tail
        for s in sorted(secrets, key=len, reverse=True):
            if s:
                text = text.replace(s, REDACTED)
        return text


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
    process: subprocess.Popen[bytes] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def stop(self, reason: str) -> None:
        self.stop_reason = reason
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_command(spec: CommandRun, extra_env: Mapping[str, str], environ: Mapping[str, str],
                handle: Handle, cap: int = OUTPUT_CAP) -> Attempt:
    try:
        env_values, secrets = resolve(spec.env, environ)
    except SecretError as e:
        return Attempt("failed", error=str(e))
    env = {k: environ[k] for k in BASE_ENV if k in environ}
    env.update(env_values)
    env.update(extra_env)
    buf = CappedBuffer(cap)
    try:
        proc = subprocess.Popen(list(spec.argv), cwd=spec.workdir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return Attempt("failed", error=f"cannot start {spec.argv[0]}: {e.strerror or e}")
    handle.process = proc
    if handle.stop_reason:  # stopped before it started
        _signal_group(proc.pid, signal.SIGTERM)
    reader = threading.Thread(target=_pump, args=(proc, buf), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=spec.timeout.total_seconds())
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    if handle.stop_reason:
        _terminate_group(proc, KILL_GRACE)
    # Whatever the job left behind in its process group goes with it: no grandchild survives.
    _signal_group(proc.pid, signal.SIGKILL)
    reader.join(timeout=5)
    output = buf.text(secrets)
    code = proc.returncode
    if handle.stop_reason:
        return Attempt(handle.stop_reason, exit_code=code, output=output, dropped=buf.dropped)
    if timed_out:
        return Attempt("timed_out", exit_code=code, error=f"timed out after {format_duration(spec.timeout)}",
                       output=output, dropped=buf.dropped)
    if code == 0:
        return Attempt("succeeded", exit_code=0, output=output, dropped=buf.dropped)
    error = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return Attempt("failed", exit_code=code, error=error, output=output, dropped=buf.dropped)


def _terminate_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _pump(proc: subprocess.Popen[bytes], buf: CappedBuffer) -> None:
    assert proc.stdout is not None
    read = proc.stdout.read1 if hasattr(proc.stdout, "read1") else proc.stdout.read
    while chunk := read(65536):
        buf.write(chunk)
    proc.stdout.close()


def run_http(spec: HttpRun, extra_headers: Mapping[str, str], environ: Mapping[str, str],
             cap: int = OUTPUT_CAP) -> Attempt:
    import httpx

    try:
        headers, secrets = resolve(spec.headers, environ)
    except SecretError as e:
        return Attempt("failed", error=str(e))
    headers.update(extra_headers)
    kwargs: dict[str, object] = {"headers": headers}
    if spec.has_json:
        kwargs["json"] = spec.json_body
    elif spec.body is not None:
        kwargs["content"] = spec.body.encode()
    deadline = time.monotonic() + spec.timeout.total_seconds()
    url, host = spec.url, urlsplit(spec.url).netloc
    buf = CappedBuffer(cap)
    try:
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
                                           error=f"refused redirect to another host: {target.host}")
                        url = str(target)
                        continue
                    for chunk in response.iter_bytes():
                        buf.write(chunk)
                        if time.monotonic() > deadline:
                            return Attempt("timed_out", http_status=response.status_code,
                                           error=f"timed out after {format_duration(spec.timeout)}",
                                           output=buf.text(secrets), dropped=buf.dropped)
                    status = response.status_code
                    ok = status in spec.expect_status if spec.expect_status else 200 <= status < 300
                    return Attempt("succeeded" if ok else "failed", http_status=status,
                                   error=None if ok else f"unexpected HTTP status {status}",
                                   output=buf.text(secrets), dropped=buf.dropped)
            return Attempt("failed", error="too many redirects")
    except httpx.TimeoutException:
        return Attempt("timed_out", error=f"timed out after {format_duration(spec.timeout)}")
    except httpx.HTTPError as e:
        return Attempt("failed", error=f"HTTP request failed: {type(e).__name__}: {e}")
