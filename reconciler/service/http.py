"""The HTTP server: probes, /metrics, the JSON API and the dashboard, in the daemon's process.

Starlette routes; uvicorn serves from a thread of its own (it installs no signal handlers off
the main thread, so SIGTERM stays the daemon's), and stops with the daemon. The app knows no
daemon: it reads a `Site` (the live value, the ledger, a few read-only callables and one action),
which service/app.py wires to the daemon and a test can fill in by hand.

Every response, errors included, carries the security headers, and every request must name this
server in its `Host` header: a page of another site that rebinds its DNS name to our address
would otherwise be same-origin with the API and could read run output. Served are the localhost
names, any IP literal (a rebinding page always sends a name it owns; probes and scrapers address
a pod by IP), the `--listen` host, the host of `--public-url` and each `--allowed-host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reconciler.core.policy import RUN_STATES
from reconciler.ledger.base import Action, Ledger
from reconciler.service.live import Live
from reconciler.service.tokens import Role, Token, Tokens

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    # Everything is served by us; no script, style or image comes from anywhere else.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
MAX_ID = 2**63 - 1  # SQLite's INTEGER; a larger id is no row's
_DIGITS = re.compile(r"[0-9]+")
_PORT = re.compile(r"(?::[0-9]*)?")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
MISDIRECTED = ("this server does not answer to the name in the Host header (a guard against DNS rebinding); "
               "to serve that name, start the reconciler with --allowed-host NAME")


def _asset(name: str) -> str:
    return resources.files("reconciler.data").joinpath(name).read_text("utf-8")


def _integer(name: str, raw: str, low: int, high: int) -> int:
    # ASCII digits only: int() would also take " 7", "+7", "1_0" and other scripts' digits, and
    # fails on more than 4,300 of them.
    if not _DIGITS.fullmatch(raw) or len(raw.lstrip("0")) > len(str(high)) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer between {low} and {high}")
    return int(raw)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    return default if raw is None or raw == "" else _integer(name, raw, low, high)


class BadRequest(Exception):
    pass


def host_name(value: str) -> str | None:
    """The host in a `Host` header (or an --allowed-host): lower case, without port or final dot,
    an IPv6 literal without brackets; None if it is not a well-formed host."""
    value = value.lower()
    if value.startswith("["):
        inside, bracket, port = value[1:].partition("]")
        if not bracket or not _PORT.fullmatch(port):
            return None
        try:  # a zone id comes percent-encoded (RFC 6874)
            return str(ipaddress.IPv6Address(inside.replace("%25", "%")))
        except ValueError:
            return None
    name, _, port = value.partition(":")
    name = name.removesuffix(".")
    if (port and not port.isdigit()) or not all(_LABEL.fullmatch(x) for x in name.split(".")):
        return None
    return name


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def served_names(listen: tuple[str, int] | None, public_url: str | None, allowed: Iterable[str]) -> frozenset[str]:
    names = {host_name(name) for name in allowed}
    if listen is not None:
        names.add(host_name(listen[0]))
    if public_url:
        with contextlib.suppress(ValueError):  # a malformed URL names nothing we could serve
            names.add(urlsplit(public_url).hostname)
    return frozenset(n for n in names if n)


def host_allowed(header: str, names: frozenset[str]) -> bool:
    host = host_name(header)
    if host is None:
        return False
    return host == "localhost" or host.endswith(".localhost") or host in names or _ip_literal(host)


def parse_allowed_host(text: str) -> str:
    """An --allowed-host value: a host name, with or without a port."""
    name = host_name(text)
    if name is None:
        raise ValueError(f"--allowed-host {text!r}: write a host name such as reconciler.internal")
    return name


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _not_alive() -> bool:
    return False


def _nothing_runs() -> int:
    return 0


def _no_trigger(name: str) -> None:
    raise KeyError(name)


def _no_log(event: str, **fields: Any) -> None:
    pass


def _no_backfill(name: str, slot: datetime, parallel: int) -> int | None:
    raise KeyError(name)


def _nothing(*_: Any) -> None:
    pass


def _no_pools() -> dict[str, dict[str, int]]:
    return {}


@dataclass(frozen=True)
class Site:
    """Everything the HTTP app reads, and the one thing it may do. `live` is called once per
    request; `trigger_now` raises KeyError for a schedule that is not live."""

    live: Callable[[], Live]
    ledger: Ledger
    directory: str
    names: frozenset[str] = frozenset()  # host names served besides localhost and IP literals
    token: str | Tokens | None = None  # named tokens with roles (a str: one `operate` token); None: read-only
    read_token_required: bool = False  # every read of /api and /metrics needs a token too
    alive: Callable[[], bool] = _not_alive  # the timer runs (for /healthz)
    running: Callable[[], int] = _nothing_runs
    waiting: Callable[[], int] = _nothing_runs  # slots waiting to start (the runner's backlog)
    trigger_now: Callable[[str], None] = _no_trigger
    registry: CollectorRegistry | None = None  # /metrics; None serves no metric
    log: Callable[..., None] = _no_log
    clock: Callable[[], datetime] = _utcnow
    backfill: Callable[[str, datetime, int], int | None] = _no_backfill  # Runner.backfill
    paused: Callable[[], None] = _nothing  # after a pause or resume: the runner reads the ledger again
    pools: Callable[[], dict[str, dict[str, int]]] = _no_pools  # Reconciler.pools: size, running, queued


def _tokens(token: str | Tokens | None) -> Tokens | None:
    return Tokens.single(token) if isinstance(token, str) else token


def presented(headers: Mapping[str, str], tokens: Tokens | None) -> Token | None:
    """The token a request's `Authorization: Bearer …` carries, if it is one of `tokens`."""
    if tokens is None:
        return None
    # RFC 9110: the scheme is case-insensitive and the credentials follow one or more spaces.
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return tokens.match(credentials.strip(" ").encode("latin-1"))  # Starlette decoded the bytes as latin-1


NEEDS_TOKEN = "a valid bearer token is required: Authorization: Bearer TOKEN"


class ReadGate:
    """With --read-token-required, every read of the API and of /metrics needs a token (any role).
    The probes stay open for the kubelet, and so do the dashboard's page, script and style, which
    hold no data: the page asks for a token and sends it with each request."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app, self.tokens = app, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith("/api/") or path == "/metrics"):
            from starlette.datastructures import Headers

            if presented(Headers(scope=scope), self.tokens) is None:
                from starlette.responses import JSONResponse

                await JSONResponse({"error": NEEDS_TOKEN + " (this server requires a token to read)"},
                                   status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Guard:
    """Outermost: checks the Host header, and puts the security headers on every response, also on
    Starlette's own 404, 405 and 500 answers."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = {k for k, _ in _RAW_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in own]
                message = {**message, "headers": [*headers, *_RAW_HEADERS]}
            await send(message)

        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        # No Host at all is an HTTP/1.0 client, never a browser; two are a malformed request.
        if len(hosts) > 1 or (hosts and not host_allowed(hosts[0], self.names)):
            from starlette.responses import JSONResponse

            await JSONResponse({"error": MISDIRECTED}, status_code=421)(scope, receive, secured)
            return
        await self.app(scope, receive, secured)


def build_app(site: Site) -> ASGIApp:
    # Imported here, not at the top: `bind` runs before the first load, and these imports can wait
    # until the first revision is live.
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from reconciler.service import graph, pictures, views
    from reconciler.service.views import SORTS, Query

    dashboard, script, style = _asset("dashboard.html"), _asset("dashboard.js"), _asset("dashboard.css")
    # The operator's actions and activity live in files of their own, served as part of these two.
    script, style = f"{script}\n{_asset('actions.js')}", f"{style}\n{_asset('actions.css')}"
    registry = site.registry if site.registry is not None else CollectorRegistry(auto_describe=True)
    ledger, tokens = site.ledger, _tokens(site.token)
    read_only = tokens is None or all(t.role != Role.OPERATE for t in tokens.entries)

    def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers=headers)

    def error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
        return ok({"error": message}, status, headers)

    async def healthz(_: Request) -> Response:
        alive = site.alive()
        return PlainTextResponse("ok\n" if alive else "timer not running\n", status_code=200 if alive else 503)

    async def readyz(_: Request) -> Response:
        st = site.live().status
        if st.serving:
            return PlainTextResponse("ready\n")
        return PlainTextResponse(st.unready_reason + "\n", status_code=503)

    async def metrics(_: Request) -> Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def index(_: Request) -> Response:
        return HTMLResponse(dashboard)

    async def asset_js(_: Request) -> Response:
        return Response(script, media_type="text/javascript")

    async def asset_css(_: Request) -> Response:
        return Response(style, media_type="text/css")

    async def whoami(request: Request) -> Response:  # the dashboard asks what its token may do
        token = presented(request.headers, tokens)
        if token is None:
            return error(NEEDS_TOKEN, 401, {"WWW-Authenticate": "Bearer"})
        return ok({"name": token.name, "role": token.role.value})

    async def status(_: Request) -> Response:
        return ok(views.status(site.live(), directory=site.directory, read_only=read_only, now=site.clock()))

    async def overview(_: Request) -> Response:
        return ok(await asyncio.to_thread(views.overview, site.live(), ledger, running=site.running(),
                                          waiting=site.waiting(),
                                          directory=site.directory, read_only=read_only, now=site.clock()))

    async def schedules(request: Request) -> Response:
        p = request.query_params
        sort = p.get("sort", "name")
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
        query = Query(q=p.get("q", "").strip(), label=p.get("label", ""), state=p.get("state", ""),
                      last_status=p.get("last_status", ""), sort=sort, desc=p.get("desc", "") in ("1", "true"),
                      limit=_int(request, "limit", 50, 1, 1000), offset=_int(request, "offset", 0, 0, 10**9))
        return ok(await asyncio.to_thread(views.schedules, site.live(), ledger, query, site.clock()))

    async def schedule(request: Request) -> Response:
        data = await asyncio.to_thread(views.schedule, site.live(), ledger, request.path_params["name"],
                                       now=site.clock())
        return ok(data) if data is not None else error("no such schedule", 404)

    async def runs(request: Request) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter is not None and status_filter not in RUN_STATES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATES)}")
        before = request.query_params.get("before") or None
        data = await asyncio.to_thread(
            views.runs, ledger, request.query_params.get("schedule") or None, status_filter,
            _int(request, "limit", 50, 1, 1000), _integer("before", before, 1, MAX_ID) if before else None)
        return ok(data)

    async def run(request: Request) -> Response:
        run_id = _integer("run id", request.path_params["run_id"], 1, MAX_ID)
        data = await asyncio.to_thread(views.run, ledger, run_id)
        return ok(data) if data is not None else error("no such run", 404)

    def operator_of(request: Request) -> Token | Response:
        """The operate token the request carries; else the answer that refuses it."""
        if read_only:
            return error("read-only: start the reconciler with --token-file holding an operate token "
                         "to allow operator actions", 403)
        token = presented(request.headers, tokens)
        if token is None:
            return error(NEEDS_TOKEN, 401, {"WWW-Authenticate": "Bearer"})
        if token.role != Role.OPERATE:
            return error(f"the token {token.name} may only read: actions need a token whose role is operate", 403)
        return token

    def record(token: Token, action: Action, targets: list[str], reason: str = "",
               details: dict[str, Any] | None = None) -> None:
        ledger.record_activity(token.name, action, targets, reason, details)

    async def trigger(request: Request) -> Response:
        token = operator_of(request)
        if not isinstance(token, Token):
            return token
        name, body = request.path_params["name"], await operator.body(request)
        reason = operator.text(body, "reason") or ""
        try:
            site.trigger_now(name)
        except KeyError:
            return error("no such schedule", 404)
        await asyncio.to_thread(record, token, Action.TRIGGER, [name], reason)
        site.log("api.trigger", schedule=name)
        return ok({"triggered": name}, 202)

    from reconciler.service import activity, operator

    async def pauses(_: Request) -> Response:
        return ok(await asyncio.to_thread(operator.pauses, ledger, site.clock()))

    async def pause(request: Request) -> Response:
        token = operator_of(request)
        if not isinstance(token, Token):
            return token
        name, body = request.path_params["name"], await operator.body(request)
        if name not in site.live().schedules:
            return error("no such schedule", 404)
        data = await asyncio.to_thread(operator.pause, ledger, name, body, site.clock(), token.name)
        await asyncio.to_thread(record, token, Action.PAUSE, [name], data["reason"], {"until": data["until"]})
        site.paused()
        site.log("api.pause", schedule=name, reason=data["reason"], until=data["until"])
        return ok(data)

    async def resume(request: Request) -> Response:
        token = operator_of(request)
        if not isinstance(token, Token):
            return token
        name, body = request.path_params["name"], await operator.body(request)
        if name not in site.live().schedules:
            return error("no such schedule", 404)
        reason = operator.text(body, "reason") or ""
        was = await asyncio.to_thread(ledger.resume, name)
        await asyncio.to_thread(record, token, Action.RESUME, [name], reason, {"was_paused": was is not None})
        site.paused()
        site.log("api.resume", schedule=name, was_paused=was is not None)
        return ok({"schedule": name, "was_paused": was is not None})

    async def backfill(request: Request) -> Response:
        token = operator_of(request)
        if not isinstance(token, Token):
            return token
        name, body = request.path_params["name"], await operator.body(request)
        s = site.live().schedules.get(name)
        if s is None:
            return error("no such schedule", 404)
        data, started = await asyncio.to_thread(operator.backfill, ledger, s, body, site.clock(), site.backfill)
        slots = sum(p["plan"] == "run" for p in data["slots"])
        if started:  # a dry run changes nothing, so it is no activity
            await asyncio.to_thread(record, token, Action.BACKFILL, [name], operator.text(body, "reason") or "",
                                    {"from": body["from"], "to": body["to"], "slots": slots})
        site.log("api.backfill", schedule=name, slots=slots, dry_run=data["dry_run"])
        return ok(data, 202 if started else 200)

    def bulk_of(action: Action) -> Callable[[Request], Any]:
        async def bulk(request: Request) -> Response:
            token = operator_of(request)
            if not isinstance(token, Token):
                return token
            body = await operator.body(request)
            try:
                data, done = await asyncio.to_thread(activity.bulk, ledger, site.live().schedules, body,
                                                     site.clock(), token.name, action)
            except activity.Changed as e:
                return ok({"error": str(e), **e.preview}, 409)
            if done is not None:
                site.paused()
                site.log(f"api.{action.value}", by=token.name, selector=data["selector"],
                         schedules=len(data["schedules"]))
            return ok(data)
        return bulk

    async def activity_list(request: Request) -> Response:
        before = request.query_params.get("before") or None
        data = await asyncio.to_thread(
            activity.page, ledger, request.query_params.get("schedule") or None,
            _integer("before", before, 1, MAX_ID) if before else None, _int(request, "limit", 50, 1, 1000))
        return ok(data)

    async def replicas(_: Request) -> Response:
        from reconciler.service.replicas import replicas as listed

        return ok(await asyncio.to_thread(listed, ledger))

    async def pools(_: Request) -> Response:
        state = await asyncio.to_thread(site.pools)
        return ok({"pools": [{"name": name, "size": p["size"], "queued": p["queued"],
                              "running": p["running"] if p.get("running", -1) >= 0 else None}
                             for name, p in sorted(state.items())]})

    async def summary(_: Request) -> Response:
        from reconciler.service.summary import of_daemon

        return ok(await asyncio.to_thread(of_daemon, site.live(), ledger))

    async def openapi(_: Request) -> Response:
        from reconciler import __version__
        from reconciler.service.openapi import document

        return ok(document(__version__))

    async def history(request: Request) -> Response:  # from git, via the ledger's audit trail
        from reconciler.service.audit import history as changes

        name, limit = request.path_params["name"], _int(request, "limit", 100, 1, 1000)
        data = await asyncio.to_thread(changes, ledger, name, limit)
        return ok(data) if data["changes"] or name in site.live().schedules else error("no such schedule", 404)

    async def bad_request(_: Request, exc: Exception) -> Response:  # ValueError: an operator's request
        return error(str(exc), 400)

    routes = [
        Route("/", index), Route("/dashboard.js", asset_js), Route("/dashboard.css", asset_css),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/api/v1/status", status), Route("/api/v1/overview", overview),
        Route("/api/v1/schedules", schedules), Route("/api/v1/schedules/{name}", schedule),
        Route("/api/v1/schedules/{name}/trigger", trigger, methods=["POST"]),
        Route("/api/v1/schedules/{name}/pause", pause, methods=["POST"]),
        Route("/api/v1/schedules/{name}/resume", resume, methods=["POST"]),
        Route("/api/v1/schedules/{name}/backfill", backfill, methods=["POST"]),
        Route("/api/v1/pauses", pauses),
        Route("/api/v1/bulk/pause", bulk_of(Action.BULK_PAUSE), methods=["POST"]),
        Route("/api/v1/bulk/resume", bulk_of(Action.BULK_RESUME), methods=["POST"]),
        Route("/api/v1/activity", activity_list), Route("/api/v1/token", whoami),
        Route("/api/v1/runs", runs), Route("/api/v1/runs/{run_id}", run), Route("/api/v1/replicas", replicas),
        Route("/api/v1/summary", summary), Route("/api/v1/pools", pools),

        Route("/api/v1/openapi.json", openapi), Route("/api/v1/schedules/{name}/history", history),
        *pictures.routes(site),  # strips, trends, the timeline and the charting library
        *graph.routes(site),  # the dependency graph, its view and the layout library
    ]
    app: ASGIApp = Starlette(routes=routes, exception_handlers={BadRequest: bad_request,
                                                                operator.Refused: bad_request})
    if site.read_token_required and tokens is not None:
        app = ReadGate(app, tokens)
    return Guard(app, site.names)


def parse_listen(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (`[::1]:8080` for IPv6), or `none` to serve nothing."""
    if text.lower() in ("none", "off", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {text!r}: write HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(host: str, port: int) -> socket.socket:
    """Bound and listening before anything else starts: a taken port fails the start at once, port
    0 is known, and a client connecting right after "http.listening" waits in the backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.address = self.sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="http",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

