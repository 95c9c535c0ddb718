"""`reconciler run`: load, apply, watch until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.commands.common import duration_arg
from reconciler.core.durations import DurationError
from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.service.tokens import Tokens


def run(directory: str, ledger_path: str, allow_empty: bool, rescan: str, selector: Sequence[str],
        log_format: str, grace: str, listen: str = "127.0.0.1:8080", token_file: str | None = None,
        public_url: str | None = None, allowed_hosts: Sequence[str] = (), heartbeat: str = "5s",
        lease: str = "20s", strict_cron: bool = False, max_running: int | None = None,
        read_token_required: bool = False) -> int:
    from reconciler.engine.leases import LeaseTimes
    from reconciler.ledger import open_ledger
    from reconciler.service.app import run_daemon
    from reconciler.service.daemon import Options, parse_selector
    from reconciler.service.log import make_log

    if log_format not in ("text", "json"):
        raise UsageError("--log-format: choose text or json")
    from reconciler.service.http import parse_allowed_host, parse_listen

    try:
        options = Options(directory=directory, allow_empty=allow_empty, rescan=duration_arg(rescan),
                          selector=parse_selector(selector), grace=duration_arg(grace).total_seconds(),
                          listen=parse_listen(listen), token=_token(token_file), public_url=public_url,
                          allowed_hosts=tuple(parse_allowed_host(h) for h in allowed_hosts),
                          strict_cron=strict_cron)
    except (DurationError, ValueError) as e:
        raise UsageError(str(e)) from e
    try:
        options.leases = LeaseTimes(duration_arg(heartbeat), duration_arg(lease))
    except (DurationError, ValueError) as e:
        raise UsageError(f"--heartbeat {heartbeat} --lease {lease}: {e}") from e
    if read_token_required and options.token is None:
        raise UsageError("--read-token-required needs --token-file (the tokens that may read)")
    options.read_token_required = read_token_required
    if max_running is not None and max_running < 1:
        raise UsageError(f"--max-running {max_running}: at least 1")
    options.max_running = max_running
    if options.rescan < timedelta(seconds=1):
        raise UsageError(f"--rescan {rescan}: rescan at most once a second (file events are seen at once anyway)")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ledger = open_ledger(ledger_path)
    try:
        return run_daemon(options, ledger, make_log(log_format), lambda: datetime.now(UTC), stop)
    finally:
        ledger.close()


def _token(path: str | None) -> Tokens | None:
    from reconciler.service.tokens import TokenFileError, read

    if path is None:
        return None
    try:
        return read(path)
    except TokenFileError as e:
        raise UsageError(f"--token-file {e}") from e
