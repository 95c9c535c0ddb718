"""The wiring of one `reconciler run` process: the daemon, the HTTP server, and their start and
stop order. Nothing in the service imports this module; commands/run.py calls `run_daemon` and
owns the signals (it sets `stop`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from reconciler.engine.runner import Clock
from reconciler.ledger.base import Ledger
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.http import HttpServer, Site, bind, build_app, served_names
from reconciler.service.log import Log


class ListenError(Exception):
    """The HTTP address cannot be used (taken, or not this machine's)."""


def site_of(reconciler: Reconciler) -> Site:
    """What the HTTP app may read of a daemon and do with it, and nothing more."""
    options = reconciler.options
    return Site(live=lambda: reconciler.live, ledger=reconciler.ledger, directory=options.directory,
                names=served_names(options.listen, options.public_url, options.allowed_hosts),
                token=options.token, read_token_required=options.read_token_required,
                alive=reconciler.timer.alive, running=reconciler.runner.running,
                waiting=reconciler.runner.waiting,
                trigger_now=reconciler.runner.trigger_now, registry=reconciler.metrics.registry,
                log=reconciler.log, clock=reconciler.clock, backfill=reconciler.runner.backfill,
                paused=reconciler.runner.pauses.forget, pools=reconciler.pools)


def run_daemon(options: Options, ledger: Ledger, log: Log, clock: Clock, stop: threading.Event,
               on_ready: Callable[[Reconciler], Any] | None = None) -> int:
    """Bind the port first (a taken port fails before anything runs, and a client that connects
    early waits in the backlog), start the daemon (its first revision is live, or the ledger's),
    serve HTTP, then watch until `stop`. Stop in reverse: HTTP first, so no request reads a daemon
    that is stopping, then the daemon (timer, runs within the grace, revision records, notifier)."""
    sock = None
    if options.listen is not None:
        host, port = options.listen
        try:
            sock = bind(host, port)
        except OSError as e:
            raise ListenError(f"--listen {host}:{port}: {e.strerror or e}") from e
    reconciler = Reconciler(options, ledger, log, clock)
    reconciler.start(stop)
    if not reconciler.started:  # stopped during the first load: serve nothing, run nothing
        log("reconciler.stopping", grace=options.grace)
        reconciler.stop()
        log("reconciler.stopped")
        return 0
    server = None
    if sock is not None:
        server = HttpServer(build_app(site_of(reconciler)), sock)
        server.start()
        host, port = server.address
        shown = host if ":" not in host else f"[{host}]"
        log("http.listening", address=f"{host}:{port}", url=f"http://{shown}:{port}/",
            operator_actions=options.token is not None)
    if on_ready:
        on_ready(reconciler)
    log("reconciler.started", directory=options.directory, watch=[str(p) for p in reconciler.source.watch_paths],
        ready=reconciler.live.status.ready, **reconciler.startup)
    try:
        reconciler.watch(stop)
    finally:
        log("reconciler.stopping", grace=options.grace)
        if server is not None:
            server.stop()
        reconciler.stop()
        log("reconciler.stopped")
    return 0
