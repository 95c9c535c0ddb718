"""The `container` marker, and the timings its tests collect, printed at the end of the run."""

from __future__ import annotations

import pytest

TIMINGS = pytest.StashKey[dict[str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds and runs the image with podman "
                                       "(only with RECONCILER_CONTAINER_TESTS=1)")
    config.stash[TIMINGS] = {}


@pytest.fixture(scope="session")
def timings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Phase -> what it took (or measured), for the summary: CI's time is a budget."""
    return request.config.stash[TIMINGS]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    found = config.stash.get(TIMINGS, {})
    if found:
        terminalreporter.section("container: timings and size")
        for phase, value in found.items():
            terminalreporter.write_line(f"{phase}: {value}")
