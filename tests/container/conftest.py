"""The `container` marker, the image (built once for every module), what each module creates
(removed at its end), and the timings the tests collect, printed at the end of the run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.container.engine import ENV, HERE, IMAGE, Made

TIMINGS = pytest.StashKey[dict[str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds and runs the image with podman "
                                       "(only with RECONCILER_CONTAINER_TESTS=1)")
    config.stash[TIMINGS] = {}


@pytest.fixture(scope="session")
def timings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Phase -> what it took (or measured), for the summary: CI's time is a budget."""
    return request.config.stash[TIMINGS]


@pytest.fixture(scope="session")
def image(timings: dict[str, str]) -> str:
    """The image, built by tests/container/build.sh from the unchanged Dockerfile."""
    started = time.monotonic()
    done = subprocess.run(["bash", str(HERE / "build.sh"), IMAGE], capture_output=True, text=True, env=ENV,
                          timeout=840, check=False)
    assert done.returncode == 0, f"build.sh failed\n{done.stdout}\n{done.stderr}"
    for line in done.stdout.splitlines():
        if line.startswith("timing: "):
            phase, seconds = line.removeprefix("timing: ").rsplit(" ", 1)
            timings[f"build: {phase}"] = f"{seconds} s"
    timings["build: all"] = f"{time.monotonic() - started:.1f} s"
    return IMAGE


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """Every container and volume a module creates, removed by id at its end, even after a failure."""
    found = Made(tmp_path_factory.mktemp("cids"))
    try:
        yield found
    finally:
        found.remove()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    found = config.stash.get(TIMINGS, {})
    if found:
        terminalreporter.section("container: timings and size")
        for phase, value in found.items():
            terminalreporter.write_line(f"{phase}: {value}")
