from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

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
