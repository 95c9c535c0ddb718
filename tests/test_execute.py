"""Executing attempts with real processes and a real local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import resource
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.model import CommandRun, EnvValue, HttpRun
from reconciler.engine.execute import OUTPUT_CAP, CappedBuffer, Handle, Redactor, run_command, run_http
from reconciler.engine.procs import Supervisor, Whereabouts, stat
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


# ---- any exception finishes the attempt as failed -------------------------------------------------


@pytest.mark.parametrize(("spec", "reason"), [
    (cmd("/bin/echo", "a\0b"), "embedded null byte"),
    (cmd("/bin/true", env={"X": EnvValue(literal="a\0b")}), "embedded null byte"),
    (cmd("/bin/\0true"), "embedded null byte"),
])
def test_a_job_that_cannot_be_started_for_any_reason_fails_with_that_reason(spec: CommandRun, reason: str) -> None:
    result = run_command(spec, {}, os.environ, Handle())
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("cannot start /bin/")
    assert reason in result.error
    assert "\0" not in result.error


def headers_run(url: str, headers: dict[str, str]) -> HttpRun:
    return HttpRun(url, "GET", tuple((k, EnvValue(literal=v)) for k, v in headers.items()), None, False, None,
                   timedelta(seconds=3), ())


@pytest.mark.parametrize(("url", "headers", "reason"), [
    ("{server}/ok", {"X-Name": "café"}, "UnicodeEncodeError"),
    ("{server}/ok\n", {}, "Invalid non-printable ASCII character"),
    ("http://[::1/", {}, "Invalid IPv6 URL"),
])
def test_an_http_job_that_cannot_be_sent_fails_with_the_reason(server: str, url: str, headers: dict[str, str],
                                                               reason: str) -> None:
    result = run_http(headers_run(url.format(server=server), headers), {}, {})
    assert result.status == "failed"
    assert reason in (result.error or "")


class OddRedirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http:\\\\169.254.169.254/")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_redirect_the_client_cannot_even_parse_fails_the_run() -> None:
    with local_server(OddRedirect) as url:
        result = run_http(headers_run(f"{url}/x", {}), {}, {})
    assert result.status == "failed"
    assert "InvalidURL" in (result.error or "")


# ---- redaction happens before the cut ---------------------------------------------------------------

SECRET = "hunter2-very-secret"


def leaks(text: str, secret: str = SECRET) -> list[str]:
    """Every piece of the secret of 3 characters or more that shows in `text` (no shorter piece of
    this one occurs in the marker or the dropped-bytes notice)."""
    return [secret[i:j] for i in range(len(secret)) for j in range(i + 3, len(secret) + 1) if secret[i:j] in text]


@pytest.mark.parametrize("before", [14, 20, 28, 29])  # the head keeps 32 bytes: the secret straddles its end
def test_a_secret_straddling_the_end_of_the_head_is_redacted_whole(before: int) -> None:
    script = f"printf '%s' {'a' * before}; printf '%s' \"$TOKEN\"; head -c 500 /dev/zero | tr '\\0' z"
    result = run_command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}), {},
                         {"PATH": "/usr/bin:/bin", "T": SECRET}, Handle(), cap=64)
    assert leaks(result.output) == []
    assert result.output.startswith("a" * before)


@pytest.mark.parametrize("after", [14, 20, 28, 29])  # the tail keeps 32 bytes: the secret straddles its start
def test_a_secret_straddling_the_start_of_the_tail_is_redacted_whole(after: int) -> None:
    script = f"head -c 500 /dev/zero | tr '\\0' z; printf '%s' \"$TOKEN\"; printf '%s' {'a' * after}"
    result = run_command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}), {},
                         {"PATH": "/usr/bin:/bin", "T": SECRET}, Handle(), cap=64)
    assert leaks(result.output) == []
    assert result.output.endswith("a" * after)


def test_a_secret_written_in_pieces_is_redacted() -> None:
    script = "printf hunter2-; sleep 0.2; printf very-; sleep 0.2; printf 'secret and more\\n'"
    result = run_command(cmd("/bin/sh", "-c", script, env={"TOKEN": EnvValue(from_env="T")}), {},
                         {"PATH": "/usr/bin:/bin", "T": SECRET}, Handle())
    assert result.output == "[redacted] and more\n"


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"a" * 30 + self.headers["Authorization"].encode() + b"z" * 500
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_secret_an_http_response_echoes_across_the_cut_is_redacted() -> None:
    with local_server(Echo) as url:
        result = run_http(http_run(f"{url}/x"), {}, {"API_TOKEN": SECRET}, cap=64)
    assert result.status == "succeeded"
    assert leaks(result.output) == []


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
    result = run_command(cmd("/bin/sh", "-c", script), {}, os.environ, Handle(), supervisor=supervisor)
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
    result = run_command(cmd("/bin/sh", "-c", script), {"RECONCILER_RUN_ID": "41"}, os.environ, Handle(),
                         supervisor=supervisor)
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
    result = run_command(cmd("/bin/sh", "-c", script, timeout=1), {}, os.environ, Handle(), supervisor=supervisor)
    child = int(pid_file.read_text())
    try:
        assert result.status == "timed_out"
        assert gone(child)
    finally:
        kill_quietly(child)


def test_a_stopped_job_that_ignores_sigterm_is_killed_and_says_so(supervisor: Supervisor) -> None:
    handle = Handle()
    stopper = threading.Timer(0.5, handle.stop, ("interrupted", "the reconciler stopped", 0.5))
    stopper.start()
    start = time.monotonic()
    result = run_command(cmd("/bin/sh", "-c", "trap '' TERM; sleep 30", timeout=60), {}, os.environ, handle,
                         supervisor=supervisor)
    elapsed = time.monotonic() - start
    assert (result.status, result.exit_code) == ("interrupted", -9)
    assert result.error == "the reconciler stopped: killed by signal 9 (SIGKILL 0.5s after SIGTERM)"
    assert elapsed < 3, f"stopping took {elapsed:.1f}s"


def test_a_job_stopped_after_it_ended_is_recorded_as_it_ended(supervisor: Supervisor) -> None:
    handle = Handle()
    result = run_command(cmd("/bin/sh", "-c", "exit 3"), {}, os.environ, handle, supervisor=supervisor)
    handle.stop("interrupted")
    assert (result.status, result.exit_code, result.error) == ("failed", 3, "exited with status 3")


def test_where_a_run_lives_is_reported_once_it_started(supervisor: Supervisor) -> None:
    seen: list[Whereabouts] = []
    handle = Handle(on_started=lambda text: seen.append(Whereabouts.loads(text)))  # type: ignore[arg-type]
    result = run_command(cmd("/bin/sh", "-c", "echo $$; cat /proc/self/cgroup"), {}, os.environ, handle,
                         supervisor=supervisor)
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


@settings(max_examples=300, deadline=None)
@given(text=st.text("abcX", max_size=60), secrets=st.lists(st.text("abc", min_size=1, max_size=6), max_size=4),
       cuts=st.lists(st.integers(0, 60), max_size=8))
def test_redaction_of_a_stream_does_not_depend_on_where_it_is_split(text: str, secrets: list[str],
                                                                     cuts: list[int]) -> None:
    whole = Redactor(secrets)
    expected = whole.feed(text.encode()) + whole.flush()
    pieces = Redactor(secrets)
    data, got, last = text.encode(), b"", 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        got += pieces.feed(data[last:cut])
        last = cut
    got += pieces.feed(data[last:]) + pieces.flush()
    assert got == expected
    if secrets:
        longest_first = sorted(set(secrets), key=len, reverse=True)
        assert got.decode() == re.sub("|".join(map(re.escape, longest_first)), "[redacted]", text)
