"""The http kind's run face against a real local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from reconciler.core.model import EnvValue
from reconciler.kinds.base import Attempt, Context
from reconciler.kinds.http.run import start
from reconciler.kinds.http.spec import HttpRun
from reconciler.kinds.runtime import OUTPUT_CAP
from tests.harness import local_server
from tests.kinds.leaks import SECRET, leaks

SLOT = datetime(2026, 1, 1, tzinfo=UTC)


def request(spec: HttpRun, environ: Mapping[str, str], cap: int = OUTPUT_CAP) -> Attempt:
    """Start and wait, as the runner does."""
    return start(spec, Context("job", SLOT, 1, 1, "rev", environ), cap=cap).wait()


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
    result = request(http_run(f"{server}/ok", "POST", json_body={"a": 1}), {"API_TOKEN": "Bearer s3cret"})
    assert (result.status, result.http_status, result.output) == ("succeeded", 200, "hello")
    method, path, headers, body = Recorder.seen[0]
    assert (method, path, json.loads(body)) == ("POST", "/ok", {"a": 1})
    assert headers["Idempotency-Key"] == "job@2026-01-01T00:00:00Z"
    assert headers["Authorization"] == "Bearer s3cret"


def test_an_unexpected_status_fails_and_expect_status_can_allow_it(server: str) -> None:
    assert request(http_run(f"{server}/teapot"), {"API_TOKEN": "x"}).error == "unexpected HTTP status 418"
    assert request(http_run(f"{server}/teapot", expect=(418,)), {"API_TOKEN": "x"}).status == "succeeded"


def test_redirects_are_followed_on_the_same_host_only(server: str) -> None:
    assert request(http_run(f"{server}/redirect-here"), {"API_TOKEN": "x"}).status == "succeeded"
    away = request(http_run(f"{server}/redirect-away"), {"API_TOKEN": "x"})
    assert (away.status, away.error) == ("failed", "refused redirect to another host: localhost")


def test_an_http_deadline_times_out(server: str) -> None:
    result = request(http_run(f"{server}/slow", timeout=0.5), {"API_TOKEN": "x"})
    assert result.status == "timed_out"


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
    result = request(headers_run(url.format(server=server), headers), {})
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
        result = request(headers_run(f"{url}/x", {}), {})
    assert result.status == "failed"
    assert "InvalidURL" in (result.error or "")


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
        result = request(http_run(f"{url}/x"), {"API_TOKEN": SECRET}, cap=64)
    assert result.status == "succeeded"
    assert leaks(result.output) == []


