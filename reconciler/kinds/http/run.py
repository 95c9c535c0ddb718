"""The run face of the http kind: one request, redirects followed on the same host only, the body
kept capped with secrets redacted. httpx is imported on the first request (start-up cost)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from reconciler.core.describe import utc_text
from reconciler.core.durations import format_duration
from reconciler.core.policy import RunStatus
from reconciler.kinds.base import KILL_GRACE, Attempt, Context, Finished, Handle
from reconciler.kinds.http.spec import HttpRun
from reconciler.kinds.runtime import OUTPUT_CAP, CappedBuffer, SecretError, printable, redact, resolve


class Request:
    """A prepared request, sent by `wait` in the calling thread. It ends by its own deadline:
    `stop` does not cut it short."""

    def __init__(self, spec: HttpRun, headers: dict[str, str], secrets: list[str], cap: int) -> None:
        self._spec, self._headers, self._secrets, self._cap = spec, headers, secrets, cap

    def stop(self, reason: RunStatus, why: str | None = None, kill_after: float = KILL_GRACE) -> None:
        pass

    def wait(self) -> Attempt:
        spec, secrets = self._spec, self._secrets
        try:
            attempt = _http(spec, self._headers, CappedBuffer(self._cap, secrets))
        except Exception as e:  # a URL or header the client refuses, a redirect it cannot parse: the run fails
            import httpx

            if isinstance(e, httpx.TimeoutException):
                return Attempt(RunStatus.TIMED_OUT, error=f"timed out after {format_duration(spec.timeout)}")
            # Only a client's message can quote a header value: say it without the secrets.
            return Attempt(RunStatus.FAILED, error=redact(
                f"HTTP request failed: {type(e).__name__}: {printable(str(e))}", secrets))
        return attempt


def start(spec: HttpRun, context: Context, *, cap: int = OUTPUT_CAP) -> Handle:
    try:
        headers, secrets = resolve(spec.headers, context.environ)
    except SecretError as e:
        return Finished(Attempt(RunStatus.FAILED, error=str(e)))
    headers["Idempotency-Key"] = f"{context.schedule}@{utc_text(context.slot)}"
    return Request(spec, headers, secrets, cap)


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
                return Attempt(RunStatus.TIMED_OUT, error=f"timed out after {format_duration(spec.timeout)}")
            with client.stream(spec.method, url, timeout=left, **kwargs) as response:  # type: ignore[arg-type]
                if response.is_redirect and "location" in response.headers:
                    target = response.url.join(response.headers["location"])
                    if target.netloc.decode() != host:
                        return Attempt(RunStatus.FAILED, http_status=response.status_code,
                                       error=f"refused redirect to another host: {printable(target.host)}")
                    url = str(target)
                    continue
                for chunk in response.iter_bytes():
                    buf.write(chunk)
                    if time.monotonic() > deadline:
                        return Attempt(RunStatus.TIMED_OUT, http_status=response.status_code,
                                       error=f"timed out after {format_duration(spec.timeout)}",
                                       output=buf.text(), dropped=buf.dropped)
                status = response.status_code
                ok = status in spec.expect_status if spec.expect_status else 200 <= status < 300
                return Attempt(RunStatus.SUCCEEDED if ok else RunStatus.FAILED, http_status=status,
                               error=None if ok else f"unexpected HTTP status {status}",
                               output=buf.text(), dropped=buf.dropped)
        return Attempt(RunStatus.FAILED, error="too many redirects")
