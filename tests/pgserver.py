"""A real PostgreSQL server for tests and benchmarks: `initdb` into a temporary directory, `pg_ctl
start` on a free loopback port, one database per test, `pg_ctl stop -m fast` at the end.

TCP connections need a password (scram-sha-256), so the ledger's password path is exercised; only
the administrator's connection, through the socket in the temporary directory, is trusted.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

ROLE = "reconciler"


@dataclass(frozen=True)
class Binaries:
    initdb: str
    pg_ctl: str


def find_binaries() -> Binaries | None:
    """initdb and pg_ctl from PATH, else from Debian's /usr/lib/postgresql/VERSION/bin (newest)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Binaries(initdb, pg_ctl)

    def version(d: str) -> int:
        m = re.search(r"/postgresql/(\d+)/", d)
        return int(m.group(1)) if m else 0

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin/"), key=version, reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return Binaries(os.path.join(d, "initdb"), os.path.join(d, "pg_ctl"))
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One throwaway cluster. `fsync=False` for tests (the data dies with them); the benchmarks
    keep PostgreSQL's durable defaults so that it is compared fairly with SQLite's synchronous=FULL."""

    def __init__(self, binaries: Binaries, *, fsync: bool = False) -> None:
        self.binaries = binaries
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))  # short: a socket path has ~100 bytes
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = 0
        self.password = f"pw-{secrets.token_hex(6)}@:/?#%"  # characters a URL must escape
        self._running = False
        self._names = itertools.count(1)
        # initdb and postgres refuse to run as root: run them as the `postgres` user then.
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> PgServer:
        atexit.register(self.stop)  # a test run that dies on an exception still stops the server
        try:
            self._initdb()
            for _ in range(3):  # the free port may be taken between the probe and the bind
                self.port = _free_port()
                if self._pg_ctl_start():
                    break
            else:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            self._running = True
            with self.admin() as db:
                db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)))
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120, check=False,
                              cwd=self.root)

    def _initdb(self) -> None:
        pwfile = self.root / "superuser.pw"
        pwfile.write_text(secrets.token_hex(16) + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        r = self._run(self.binaries.initdb, "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                      "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale",
                      "--no-sync")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def _pg_ctl_start(self) -> bool:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                   "-c max_connections=200 -c log_min_messages=warning")
        if not self.fsync:
            options += " -c fsync=off -c full_page_writes=off"
        r = self._run(self.binaries.pg_ctl, "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60",
                      "-o", options, "start")
        return r.returncode == 0

    def stop(self) -> None:
        """Stop the server (fast: open sessions are ended) and delete its directory; idempotent."""
        atexit.unregister(self.stop)
        if self.data.joinpath("postmaster.pid").exists():
            self._run(self.binaries.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        self._running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, mode: str = "fast") -> None:
        r = self._run(self.binaries.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "-l",
                      str(self.logfile), "restart")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed:\n{r.stdout}{r.stderr}\n{self.log_tail()}")

    def halt(self) -> None:
        """Stop the server as a crash would (`-m immediate`), keeping its data, to `resume` later."""
        r = self._run(self.binaries.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{r.stdout}{r.stderr}")

    def resume(self) -> None:
        """Start a halted server again, on the same port."""
        if not self._pg_ctl_start():
            raise RuntimeError(f"PostgreSQL did not start again:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # ---- databases ---------------------------------------------------------------------------

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser session through the socket (trusted), in autocommit."""
        return psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname=dbname,
                               autocommit=True)

    def create_database(self) -> str:
        """A new empty database owned by the test role; its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as db:
            # FILE_COPY (PostgreSQL 15+) copies the small template faster than logging it in the WAL.
            strategy = sql.SQL(" STRATEGY FILE_COPY" if db.info.server_version >= 150000 else "")
            db.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0{}").format(
                sql.Identifier(name), sql.Identifier(ROLE), strategy))
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(psycopg.Error), self.admin() as db:
            # FORCE: a daemon a test killed may still hold a session.
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def url(self, dbname: str, *, password: str | None = None, user: str = ROLE) -> str:
        """postgresql://USER:PASSWORD@127.0.0.1:PORT/DB, the password percent-encoded."""
        pw = self.password if password is None else password
        auth = f"{quote(user, safe='')}:{quote(pw, safe='')}@" if pw else f"{quote(user, safe='')}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{dbname}"
