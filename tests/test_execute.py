"""Executing attempts with real processes and a real local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import resource
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from reconciler.core.model import CommandRun, EnvValue, HttpRun
from reconciler.engine.execute import OUTPUT_CAP, CappedBuffer, Handle, run_command, run_http
from tests.harness import local_server


def cmd(*argv: str, timeout: float = 10, env: dict[str, EnvValue] | None = None, workdir: str | None = None
        ) -> CommandRun:
    return CommandRun(tuple(argv), workdir, tuple((env or {}).items()), timedelta(seconds=timeout))


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
    result = run_command(cmd("/bin/sh", "-c", script, timeout=1), {}, os.environ, Handle())
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
    result = run_command(cmd("/bin/sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' x; echo; echo tail-marker"),
                         {}, os.environ, Handle())
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.status == "succeeded"
    assert result.output.startswith("x" * 1000)
    assert result.output.rstrip().endswith("tail-marker")
    assert result.dropped == 100_000_000 + len("\ntail-marker\n") - OUTPUT_CAP
    assert f"[... {result.dropped} bytes dropped ...]" in result.output
    assert grown_mib < 30, f"memory grew by {grown_mib:.0f} MiB"


def test_a_missing_executable_is_a_failed_run_with_the_os_error() -> None:
    result = run_command(cmd("/nonexistent/job"), {}, os.environ, Handle())
    assert result.status == "failed"
    assert result.error == "cannot start /nonexistent/job: No such file or directory"


def test_exit_status_and_signals_are_reported() -> None:
    assert run_command(cmd("/bin/sh", "-c", "exit 3"), {}, os.environ, Handle()).error == "exited with status 3"
    killed = run_command(cmd("/bin/sh", "-c", "kill -9 $$"), {}, os.environ, Handle())
    assert (killed.status, killed.exit_code, killed.error) == ("failed", -9, "killed by signal 9")


def test_the_environment_is_minimal_plus_the_spec_plus_reconciler_ids(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-secret-value\n")
    env = {"MODE": EnvValue(literal="full"), "TOKEN": EnvValue(from_env="OUTER_SECRET"),
           "FILE": EnvValue(from_file=str(secret))}
    result = run_command(cmd("/bin/sh", "-c", "echo $MODE $TOKEN $FILE $RECONCILER_SCHEDULE $UNRELATED; pwd",
                             env=env, workdir=str(tmp_path)), {"RECONCILER_SCHEDULE": "job"},
                         {**os.environ, "OUTER_SECRET": "env-secret-value", "UNRELATED": "leak"}, Handle())
    assert result.output.splitlines() == ["full [redacted] [redacted] job", str(tmp_path)]


def test_an_unreadable_secret_fails_the_run_without_starting_it(tmp_path: Path) -> None:
    result = run_command(cmd("/bin/true", env={"T": EnvValue(from_env="NOT_SET_ANYWHERE")}), {}, {}, Handle())
    assert (result.status, result.error) == ("failed", "T: environment variable NOT_SET_ANYWHERE is not set")


def test_capped_buffer_keeps_head_and_tail() -> None:
    buf = CappedBuffer(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qr"):
        buf.write(chunk)
    assert (bytes(buf.head), bytes(buf.tail), buf.dropped) == (b"abcde", b"nopqr", 8)


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        Recorder.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path.startswith("/redirect-away"):
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.headers['Host'].rsplit(':', 1)[1]}/ok")
        elif self.path.startswith("/redirect-here"):
            self.send_response(302)
            self.send_header("Location", "/ok")
        elif self.path.startswith("/slow"):
            time.sleep(2)
            self.send_response(200)
        elif self.path.startswith("/teapot"):
            self.send_response(418)
        else:
            self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up first (the deadline test)
            self.wfile.write(b"hello")

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen.clear()
    with local_server(Recorder) as url:
        yield url


def http_run(url: str, method: str = "GET", timeout: float = 5, expect: tuple[int, ...] = (),
             json_body: object = None) -> HttpRun:
    return HttpRun(url, method, (("Authorization", EnvValue(from_env="API_TOKEN")),), json_body,
                   json_body is not None, None, timedelta(seconds=timeout), expect)


def test_an_http_job_sends_json_and_an_idempotency_key(server: str) -> None:
    result = run_http(http_run(f"{server}/ok", "POST", json_body={"a": 1}), {"Idempotency-Key": "job@slot"},
                      {"API_TOKEN": "Bearer s3cret"})
    assert (result.status, result.http_status, result.output) == ("succeeded", 200, "hello")
    method, path, headers, body = Recorder.seen[0]
    assert (method, path, json.loads(body)) == ("POST", "/ok", {"a": 1})
    assert headers["Idempotency-Key"] == "job@slot"
    assert headers["Authorization"] == "Bearer s3cret"


def test_an_unexpected_status_fails_and_expect_status_can_allow_it(server: str) -> None:
    assert run_http(http_run(f"{server}/teapot"), {}, {"API_TOKEN": "x"}).error == "unexpected HTTP status 418"
    assert run_http(http_run(f"{server}/teapot", expect=(418,)), {}, {"API_TOKEN": "x"}).status == "succeeded"


def test_redirects_are_followed_on_the_same_host_only(server: str) -> None:
    assert run_http(http_run(f"{server}/redirect-here"), {}, {"API_TOKEN": "x"}).status == "succeeded"
    away = run_http(http_run(f"{server}/redirect-away"), {}, {"API_TOKEN": "x"})
    assert (away.status, away.error) == ("failed", "refused redirect to another host: localhost")


def test_an_http_deadline_times_out(server: str) -> None:
    result = run_http(http_run(f"{server}/slow", timeout=0.5), {}, {"API_TOKEN": "x"})
    assert result.status == "timed_out"
