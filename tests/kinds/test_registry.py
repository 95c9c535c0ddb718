"""The registry of run kinds: each kind owns a fragment of the schema, loading never imports a run
face, and the runner starts whatever kind a schedule names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler import kinds
from reconciler.core.loader import Loader
from reconciler.core.schema import schema_text
from reconciler.engine.runner import Runner
from reconciler.ledger.sqlite import SqliteLedger
from tests.conftest import NOW, ROOT

RUN = json.loads(schema_text())["properties"]["run"]


def problems(run: str) -> list[str]:
    text = f"name: job\nschedule: {{every: 1h}}\nrun: {run}\n"
    return [p.message for p in Loader().load_bytes("f.yaml", text.encode(), NOW).problems]


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_every_registered_kind_is_named_as_registered_and_owns_its_name(name: str) -> None:
    k = kinds.kind(name)
    assert k.name == name
    assert name in k.keys


def test_every_key_of_run_in_the_schema_belongs_to_exactly_one_kind() -> None:
    owners = {key: [n for n in kinds.KINDS if key in kinds.kind(n).keys] for key in RUN["properties"]}
    assert all(len(found) == 1 for found in owners.values()), owners
    assert {key for n in kinds.KINDS for key in kinds.kind(n).keys} == set(RUN["properties"])


def test_the_schema_requires_exactly_one_kind_by_its_name() -> None:
    assert sorted(tuple(alt["required"]) for alt in RUN["oneOf"]) == sorted((n,) for n in kinds.KINDS)


@pytest.mark.parametrize(("run", "kind"), [("{command: [/bin/true]}", "command"),
                                           ("{http: {url: 'https://x.test/'}}", "http")])
def test_a_schedule_is_built_by_the_kind_its_run_names(run: str, kind: str) -> None:
    text = f"name: job\nschedule: {{every: 1h}}\nrun: {run}\n"
    (s,) = Loader().load_bytes("f.yaml", text.encode(), NOW).schedules
    assert s.run.kind == kind
    assert type(s.run) is type(kinds.kind(kind).build(s.spec["run"]))


def test_each_kind_checks_its_own_keys_wherever_they_appear() -> None:
    # `timeout` is the command kind's: it is checked as such, and the http kind says it is not its own.
    assert problems("{http: {url: 'https://x.test/'}, timeout: 0}") == [
        "timeout must be longer than 0", "timeout applies to commands only (see run.http.timeout)"]


def test_loading_schedules_of_every_kind_imports_no_run_face() -> None:
    code = ("import sys\nfrom datetime import datetime, UTC\nfrom reconciler.core.loader import Loader\n"
            "r = Loader().load_paths(['examples'], now=datetime.now(UTC))\n"
            "assert {s.run.kind for s in r.schedules} == {'command', 'http'}, r.schedules\n"
            "print(sorted(m for m in sys.modules if m.endswith('.run') or m.startswith(('httpx', 'subprocess'))"
            " or m in ('reconciler.kinds.procs', 'reconciler.kinds.runtime')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]"


# ---- adding a kind: a module, its schema fragment, its tests ----------------------------------------


@pytest.fixture
def echo_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(kinds.KINDS, "echo", "tests.kinds.fake")
    kinds.kind.cache_clear()
    yield
    kinds.kind.cache_clear()


def test_a_registered_kind_is_checked_and_built_by_the_loader_once_the_schema_knows_it(
        echo_kind: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.kinds.fake import EchoRun

    schema = json.loads(schema_text())
    schema["properties"]["run"]["properties"]["echo"] = {"type": "string"}  # its schema fragment
    schema["properties"]["run"]["oneOf"].append({"required": ["echo"]})
    monkeypatch.setattr("reconciler.core.schema.schema_text", lambda: json.dumps(schema))
    loader = Loader()
    said = loader.load_bytes("f.yaml", b"name: job\nschedule: {every: 1h}\nrun: {echo: hello}\n", NOW)
    (s,) = said.schedules
    assert s.run == EchoRun("hello")
    silent = loader.load_bytes("f.yaml", b"name: job\nschedule: {every: 1h}\nrun: {echo: ''}\n", NOW)
    assert [p.message for p in silent.problems] == ["say something"]


def test_the_runner_starts_any_registered_kind(echo_kind: None, tmp_path: Path) -> None:
    from tests.kinds.fake import EchoRun

    (s,) = Loader().load_bytes("f.yaml", b"name: job\nschedule: {every: 1h}\nrun: {command: [/bin/false]}\n",
                               NOW).schedules
    s = dataclasses.replace(s, run=EchoRun("hello"))
    ledger = SqliteLedger(tmp_path / "l.db")
    outputs: list[str] = []
    runner = Runner(ledger, log=lambda event, **fields: None, environ={})
    runner.on_finished = lambda record, output: outputs.append(output)
    runner.update({"job": s}, "rev")
    try:
        run_id = runner.run_now("job")
        assert run_id is not None
        record: Any = ledger.run(run_id)
        assert (record.status, record.output) == ("succeeded", f"hello from job run {run_id}")
        assert outputs == [f"hello from job run {run_id}"]
    finally:
        runner.shutdown(1)
        ledger.close()


def test_describe_says_what_runs_without_credentials() -> None:
    text = ("name: job\nschedule: {every: 1h}\nrun: {http: {url: 'https://user:pw@x.test/p?q=1', method: POST}}\n"
            "---\nname: cmd\nschedule: {every: 1h}\nrun: {command: [/bin/echo, a b, c]}\n")
    http_s, command_s = Loader().load_bytes("f.yaml", text.encode(), datetime.now(UTC)).schedules
    assert kinds.kind("http").describe(http_s.run) == "POST https://x.test/p?q=1"
    assert kinds.kind("command").describe(command_s.run) == "/bin/echo 'a b' c"
