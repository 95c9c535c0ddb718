"""Webhook notifications: decided on the run path, delivered off it.

A notification that cannot be delivered is logged and counted; it never changes the run's
record and never delays a run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import policy
from reconciler.core.describe import utc_text
from reconciler.core.model import Notify, Schedule
from reconciler.kinds.runtime import SecretError, resolve
from reconciler.ledger.base import RunRecord

OUTPUT_TAIL = 2048
_STOP = object()


@dataclass(frozen=True)
class Delivery:
    schedule: str
    target: Notify
    payload: dict[str, Any]


class Notifier:
    def __init__(self, log: Callable[..., None], count: Callable[[str], None], environ: Mapping[str, str],
                 public_url: str | None = None, attempts: int = 3, backoff: float = 1.0) -> None:
        self._log, self._count, self._environ = log, count, environ
        self._public = public_url.rstrip("/") if public_url else None
        self._attempts, self._backoff = attempts, backoff
        self._failing: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._work, name="notify", daemon=True)

    def start(self) -> None:
        """Deliveries begin (queued ones first). Separate from construction: the daemon starts
        no thread before its first load, which may fork."""
        self._thread.start()

    def seed(self, last_runs: Mapping[str, RunRecord]) -> None:
        """Failing streaks survive restarts: they are read back from each schedule's last run."""
        with self._lock:
            for name, r in last_runs.items():
                self._failing[name] = policy.still_failing(False, r.status)

    def observe(self, schedule: Schedule, record: RunRecord, output: str) -> None:
        if not policy.final(schedule.policy.retries, record.status, record.attempt):
            return
        with self._lock:
            was_failing = self._failing.get(schedule.name, False)
            self._failing[schedule.name] = policy.still_failing(was_failing, record.status)
        events = policy.events_for(record.status, was_failing, record.error)
        for target in schedule.notify:
            event = policy.wanted(target, events)
            if event is None:
                continue
            try:
                self._queue.put_nowait(Delivery(schedule.name, target, self._payload(event, record, output)))
            except queue.Full:
                self._count("dropped")
                self._log("notify.dropped", schedule=schedule.name, run_id=record.id, event=event,
                          reason="the notification queue is full")

    def _payload(self, event: str, r: RunRecord, output: str) -> dict[str, Any]:
        return {
            "event": event, "schedule": r.schedule, "slot": utc_text(r.slot), "status": r.status,
            "attempt": r.attempt, "trigger": r.cause, "run_id": r.id, "exit_code": r.exit_code,
            "http_status": r.http_status, "error": r.error,
            "duration_seconds": r.duration.total_seconds() if r.duration is not None else None,
            "revision": r.revision, "output_tail": output[-OUTPUT_TAIL:],
            "url": f"{self._public}/#/schedule/{r.schedule}/run/{r.id}" if self._public else None,
        }

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception as e:  # one bad delivery must never stop the ones after it
                self._count("failed")
                self._log("notify.failed", schedule=item.schedule, error=f"{type(e).__name__}: {e}")

    def _deliver(self, d: Delivery) -> None:
        import httpx

        base = {"schedule": d.schedule, "run_id": d.payload["run_id"], "on": d.payload["event"],
                "revision": d.payload["revision"], "slot": d.payload["slot"]}
        try:
            url = resolve((("url", d.target.url),), self._environ)[0]["url"]
            headers, _ = resolve(d.target.headers, self._environ)
        except SecretError as e:
            self._count("failed")
            self._log("notify.failed", **base, error=str(e))
            return
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = httpx.post(url, json=d.payload, headers=headers, timeout=d.target.timeout.total_seconds(),
                                      follow_redirects=False)
                if 200 <= response.status_code < 300:
                    self._count("sent")
                    self._log("notify.sent", **base, status=response.status_code, attempt=attempt)
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            if attempt < self._attempts:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        self._count("failed")
        self._log("notify.failed", **base, error=error, attempts=self._attempts)

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within `timeout`), then stop."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout=timeout)
