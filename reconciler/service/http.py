"""The HTTP server: probes, /metrics, the JSON API and the dashboard, in the daemon's process.

Starlette routes; uvicorn serves from a thread of its own (it installs no signal handlers off
the main thread, so SIGTERM stays the daemon's), and stops with the daemon.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

from reconciler.ledger.base import RUN_STATES

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from reconciler.service.daemon import Reconciler

SECURITY_HEADERS = {
    # Everything is served by us; no script, style or image comes from anywhere else.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _asset(name: str) -> str:
    return resources.files("reconciler.data").joinpath(name).read_text("utf-8")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be an integer") from e
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


class BadRequest(Exception):
    pass


def build_app(daemon: Reconciler) -> Starlette:
    # Imported here, not at the top: `bind` runs before the first load, and these imports
    # (~0.1 s) can wait until the first revision is live.
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from reconciler.service.views import SORTS, Query, Views

    views = Views(daemon)
    dashboard, script, style = _asset("dashboard.html"), _asset("dashboard.js"), _asset("dashboard.css")

    def ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers=SECURITY_HEADERS)

    def error(message: str, status: int) -> JSONResponse:
        return ok({"error": message}, status)

    async def healthz(_: Request) -> Response:
        alive = daemon.alive()
        return PlainTextResponse("ok\n" if alive else "timer not running\n", status_code=200 if alive else 503)

    async def readyz(_: Request) -> Response:
        ready = daemon.status.ready
        return PlainTextResponse("ready\n" if ready else "no revision applied yet\n", status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        body = await asyncio.to_thread(generate_latest, daemon.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def index(_: Request) -> Response:
        return HTMLResponse(dashboard, headers=SECURITY_HEADERS)

    async def asset_js(_: Request) -> Response:
        return Response(script, media_type="text/javascript", headers=SECURITY_HEADERS)

    async def asset_css(_: Request) -> Response:
        return Response(style, media_type="text/css", headers=SECURITY_HEADERS)

    async def status(_: Request) -> Response:
        return ok(views.status())

    async def overview(_: Request) -> Response:
        return ok(await asyncio.to_thread(views.overview))

    async def schedules(request: Request) -> Response:
        p = request.query_params
        sort = p.get("sort", "name")
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
        query = Query(q=p.get("q", "").strip(), label=p.get("label", ""), state=p.get("state", ""),
                      last_status=p.get("last_status", ""), sort=sort, desc=p.get("desc", "") in ("1", "true"),
                      limit=_int(request, "limit", 50, 1, 1000), offset=_int(request, "offset", 0, 0, 10**9))
        return ok(await asyncio.to_thread(views.schedules, query))

    async def schedule(request: Request) -> Response:
        data = await asyncio.to_thread(views.schedule, request.path_params["name"])
        return ok(data) if data is not None else error("no such schedule", 404)

    async def runs(request: Request) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter is not None and status_filter not in RUN_STATES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATES)}")
        before = request.query_params.get("before")
        data = await asyncio.to_thread(
            views.runs, request.query_params.get("schedule") or None, status_filter,
            _int(request, "limit", 50, 1, 1000), int(before) if before and before.isdigit() else None)
        return ok(data)

    async def run(request: Request) -> Response:
        data = await asyncio.to_thread(views.run, request.path_params["run_id"])
        return ok(data) if data is not None else error("no such run", 404)

    async def trigger(request: Request) -> Response:
        if daemon.token is None:
            return error("read-only: start the reconciler with --token-file to allow operator actions", 403)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, daemon.token.encode()):
            return error("a valid bearer token is required", 401)
        name = request.path_params["name"]
        try:
            daemon.runner.trigger_now(name)
        except KeyError:
            return error("no such schedule", 404)
        daemon.log("api.trigger", schedule=name)
        return ok({"triggered": name}, 202)

    async def bad_request(_: Request, exc: Exception) -> Response:
        return error(str(exc), 400)

    routes = [
        Route("/", index), Route("/dashboard.js", asset_js), Route("/dashboard.css", asset_css),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/api/v1/status", status), Route("/api/v1/overview", overview),
        Route("/api/v1/schedules", schedules), Route("/api/v1/schedules/{name}", schedule),
        Route("/api/v1/schedules/{name}/trigger", trigger, methods=["POST"]),
        Route("/api/v1/runs", runs), Route("/api/v1/runs/{run_id:int}", run),
    ]
    return Starlette(routes=routes, exception_handlers={BadRequest: bad_request})


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
    def __init__(self, daemon: Reconciler, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.address = self.sock.getsockname()[:2]
        config = uvicorn.Config(build_app(daemon), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="http",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

