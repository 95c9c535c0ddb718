"""`reconciler ledger copy SRC DST`, the real command on a real PostgreSQL, both directions."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from reconciler.core.policy import RunStatus
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Outcome
from tests.ledger.test_ledger_contract import T0, _every_kind_of_run, _everything, claim
from tests.pgserver import PgServer

Run = Callable[..., subprocess.CompletedProcess[str]]


def _source(path: Path, *, stop_replica: bool = True) -> tuple[object, ...]:
    led = open_ledger(path)
    try:
        _every_kind_of_run(led)
        if stop_replica:
            led.deregister_replica("me")
        return _everything(led)
    finally:
        led.close()


def _read(location: str | Path) -> tuple[object, ...]:
    led = open_ledger(location, create=False)
    try:
        return _everything(led)
    finally:
        led.close()


def test_a_sqlite_ledger_copied_to_postgresql_and_back_keeps_every_run_and_revision(
        reconciler: Run, tmp_path: Path, postgres_url: str, pg_server: PgServer) -> None:
    first, back = tmp_path / "first.db", tmp_path / "back" / "ledger.db"
    original = _source(first)
    there = reconciler("ledger", "copy", str(first), postgres_url)
    assert there.returncode == 0, there.stderr
    assert there.stdout.splitlines()[0].endswith(f": {len(RunStatus)} runs, 3 revisions, 3 specs, 1 max_runs counters, "
                                              "0 pauses, 0 audit records, 0 actions")
    assert "1 run(s) were still marked running" in there.stdout
    assert _read(postgres_url) == original
    again = reconciler("ledger", "copy", postgres_url, str(back), "--format", "json")
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout)
    assert {k: counts[k] for k in ("runs", "revisions", "specs", "counters", "running")} == {
        "runs": len(RunStatus), "revisions": 3, "specs": 3, "counters": 1, "running": 1}
    assert _read(back) == original  # NUL bytes, accents, microseconds and ids included
    for out in (there, again):
        assert pg_server.password not in out.stdout + out.stderr
        assert quote(pg_server.password, safe="") not in out.stdout + out.stderr
    history = reconciler("history", "--ledger", str(back), "--status", "abandoned", "--format", "json")
    assert [r["status"] for r in json.loads(history.stdout)] == ["abandoned"]


def test_a_copy_is_refused_while_a_reconciler_still_uses_the_source(
        reconciler: Run, tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "live.db"
    _source(source, stop_replica=False)  # its replica "me" heartbeats as far as the ledger knows
    r = reconciler("ledger", "copy", str(source), postgres_url)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 reconciler(s) still use the source (h pid 1); stop them first" in r.stderr
    led = open_ledger(postgres_url)
    try:
        assert led.runs() == []
        assert led.last_revision() is None
    finally:
        led.close()


def test_a_copy_into_a_used_ledger_is_refused_and_writes_nothing(
        reconciler: Run, tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "source.db"
    _source(source)
    used = open_ledger(postgres_url)
    try:
        mine = claim(used, "mine", 0)
        assert mine is not None
        used.finish(mine, Outcome(RunStatus.SUCCEEDED, T0 + timedelta(seconds=1)))
    finally:
        used.close()
    r = reconciler("ledger", "copy", str(source), postgres_url)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the ledger is not empty (it has runs); copy into a new one" in r.stderr
    led = open_ledger(postgres_url)
    try:
        assert [x.schedule for x in led.runs()] == ["mine"]
    finally:
        led.close()


def test_a_missing_source_is_a_usage_error_and_creates_nothing(reconciler: Run, tmp_path: Path) -> None:
    r = reconciler("ledger", "copy", str(tmp_path / "typo.db"), str(tmp_path / "new.db"))
    assert r.returncode == 64, r.stdout + r.stderr
    assert "typo.db: no such ledger" in r.stderr
    assert not (tmp_path / "typo.db").exists()
    assert not (tmp_path / "new.db").exists()
    same = reconciler("ledger", "copy", str(tmp_path / "a.db"), str(tmp_path / "." / "a.db"))
    assert same.returncode == 64
    assert "the source and the destination are the same ledger" in same.stderr
