from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness import Daemon

if TYPE_CHECKING:
    from tests.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def reconciler() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `reconciler` command as a subprocess."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("reconciler")
        return subprocess.run([str(exe), *args], cwd=cwd or ROOT, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})}, check=False)

    return run


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the session (tests/pgserver.py). Without its binaries the tests
    that need it are skipped, except under CI, where that fails them."""
    from tests.pgserver import PgServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        why = "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run the PostgreSQL tests")
        pytest.skip(why)
    server = PgServer(binaries).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(pg_server: PgServer) -> Iterator[str]:
    """A new empty database for one test: postgresql://USER:PASSWORD@127.0.0.1:PORT/DB."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def started() -> Iterator[list[Daemon]]:
    """Real daemons a test starts; those still running at its end are stopped (SIGTERM)."""
    daemons: list[Daemon] = []
    yield daemons
    for d in daemons:
        if d.proc.poll() is None:
            d.stop()
        d.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Real daemons a test starts; those still running at its end are killed (SIGKILL)."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.close()


@pytest.fixture(scope="session", autouse=True)
def _the_launcher_ends_with_the_tests() -> Iterator[None]:
    """A resident launcher a test started in this process ends with the tests, not at the
    interpreter's exit: so that its coverage data is written before pytest-cov combines the data."""
    yield
    from reconciler.kinds.launcher import close_resident

    close_resident()
