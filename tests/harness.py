"""Starting the real `reconciler run` as a subprocess and watching what it does."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("reconciler"))
# For tests that wait for a killed daemon's runs to be abandoned: seconds, not the default 25.
SHORT_LEASES = ("--heartbeat", "1s", "--lease", "4s")


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    def __init__(self, directory: Path, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = workdir / f"daemon-{time.monotonic_ns()}.log"
        self.ledger = workdir / "ledger.db"
        self._log = self.log_path.open("w")
        if "--listen" not in args:  # a free port each: daemons of different tests never collide
            args = (*args, "--listen", "127.0.0.1:0")
        self.proc = subprocess.Popen(
            [EXE, "run", "--dir", str(directory), "--ledger", str(self.ledger), "--log-format", "json",
             "--rescan", "2s", *args],
            cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if kind is None or e.get("event") == kind:
                out.append(e)
        return out

    def wait_event(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for e in self.events(kind):
                if all(e.get(k) == v for k, v in match.items()):
                    return e
            return None

        try:
            return wait_for(found, timeout, f"{kind} {match} in {self.log_path}")  # type: ignore[no-any-return]
        except AssertionError as e:
            state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise AssertionError(f"{e}\nthe daemon is {state}; its log ends:\n{tail}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def close(self) -> None:
        """Kill the daemon if it still runs; close its log either way (a test's end)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=40)
        self._log.close()


def job(name: str, marker: Path, every: str = "1s", text: str | None = None, **extra: str) -> str:
    """A schedule whose runs append a line to `marker`."""
    line = text or name
    more = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return (f"name: {name}\nschedule: {{every: {every}}}\n"
            f"run: {{command: [/bin/sh, -c, 'echo {line} $RECONCILER_REVISION >> {marker}']}}\n{more}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "CI")
    git(repo, "config", "commit.gpgsign", "false")


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def serve_one_schedule(tmp_path: Path, *args: str) -> tuple[Daemon, str]:
    """A daemon with one harmless cron schedule `a`, serving HTTP on a free port; and its base URL."""
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: a\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true]}\n")
    d = Daemon(sched, tmp_path, "--listen", "127.0.0.1:0", *args)
    address = d.wait_event("http.listening")["address"]
    return d, f"http://{address}"


@contextmanager
def local_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free loopback port, serving from a thread; its base URL."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()
