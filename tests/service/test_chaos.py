"""The short chaos run in the suite: three real replicas on one PostgreSQL, SIGKILLed and restarted
at random for half a minute, and one `pg_ctl restart -m immediate` in the middle
(benchmarks/chaos.py; run it for minutes with `benchmarks/chaos.py --minutes 3`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT
from tests.pgserver import PgServer


def _chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chaos", ROOT / "benchmarks" / "chaos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(180)
def test_replicas_killed_and_restarted_at_random_through_a_postgresql_crash_run_every_slot_once(
        tmp_path: Path, postgres_url: str, pg_server: PgServer) -> None:
    chaos = _chaos()
    said: list[str] = []
    run = chaos.Chaos(pg_server, postgres_url, tmp_path, replicas=3, schedules=3, seed=15, say=said.append)
    report = run.run(22)
    text = "\n".join(said + report.lines())
    assert report.pg_restart is not None, text
    assert report.kills >= 3, text  # the chaos happened
    assert report.run > report.expected // 2, text  # and the replicas ran most slots between kills
    assert report.duplicates == [], text
    assert report.lost == [], text
    assert report.without_claim == [], text
    assert report.recorded_not_run == [], text
    assert report.unexplained == 0, text
