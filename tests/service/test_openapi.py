"""The OpenAPI document: it names exactly the routes the app serves, and schemathesis, driving the
real daemon (`reconciler run` on a free loopback port, with schedules and runs), finds no 500 and
no answer that breaks the document."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reconciler import __version__
from reconciler.ledger import open_ledger
from reconciler.service.http import Site, build_app
from reconciler.service.live import Live
from reconciler.service.openapi import document
from tests.harness import Daemon, wait_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def served_routes(tmp_path: Path) -> dict[str, set[str]]:
    ledger = open_ledger(tmp_path / "ledger.db")
    try:
        app: Any = build_app(Site(live=Live, ledger=ledger, directory="x"))
    finally:
        ledger.close()
    return {route.path: set(route.methods) - {"HEAD"} for route in app.app.routes}


def test_the_document_describes_exactly_the_routes_and_methods_the_app_serves(tmp_path: Path) -> None:
    described = {path: {m.upper() for m in ops} for path, ops in document(__version__)["paths"].items()}
    assert described == served_routes(tmp_path)


def test_every_reference_in_the_document_resolves() -> None:
    doc = document(__version__)
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(doc["components"]["schemas"])
    assert refs  # the split above found them


# ---- schemathesis against the real daemon -----------------------------------------------------------

SCHEDULES = {
    "ok.yaml": "name: nightly-ok\nschedule: {every: 1s}\nrun: {command: [/bin/sh, -c, 'echo fine']}\n"
               "labels: {team: data}\ndescription: prints fine\n",
    "bad.yaml": "name: often-fails\nschedule: {every: 1s}\nrun: {command: [/bin/false]}\n",
    "cron.yaml": "name: yearly\nschedule: {cron: '0 3 1 1 *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n",
    "off.yaml": "name: held\nenabled: false\nschedule: {cron: '0 3 * * *'}\nrun: {command: [/bin/true]}\n",
}


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("openapi")
    sched = work / "schedules"
    sched.mkdir()
    for name, text in SCHEDULES.items():
        (sched / name).write_text(text)
    token = work / "token"
    token.write_text("not-known-to-schemathesis-0123456789\n")
    d = Daemon(sched, work, "--token-file", str(token))
    try:
        base = f"http://{d.wait_event('http.listening')['address']}"
        d.wait_event("revision.applied")

        def runs() -> bool:
            with urllib.request.urlopen(base + "/api/v1/runs?limit=10", timeout=5) as r:
                items = json.load(r)["items"]
            return {i["status"] for i in items} >= {"succeeded", "failed"}

        wait_for(runs, 20, "runs of both outcomes")
        yield base
    finally:
        d.stop()


@pytest.mark.timeout(60)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(real_server: str) -> None:
    # schemathesis's own pytest plugin is not used: it reaches into pytest's private attributes,
    # which pytest 9.2 removed. Each operation gets a bounded, derandomized Hypothesis run instead.
    api = schemathesis.openapi.from_url(real_server + "/api/v1/openapi.json")
    tested = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis could not read is a defect here
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def exchange(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        exchange()
        # Random names and ids find nothing: each real one is asked for too, so 200s are checked.
        if "{name}" in operation.path:
            for name in ("nightly-ok", "often-fails", "yearly", "held"):
                operation.Case(path_parameters={"name": name}).call_and_validate(checks=CHECKS)
        if "{run_id}" in operation.path:
            for run_id in (1, 2):
                operation.Case(path_parameters={"run_id": run_id}).call_and_validate(checks=CHECKS)
        tested.append(f"{operation.method.upper()} {operation.path}")
    # Newer schemathesis releases leave out the operation that serves the document they test.
    described = {f"{m.upper()} {p}" for p, ops in document(__version__)["paths"].items() for m in ops}
    assert described - {"GET /api/v1/openapi.json"} <= set(tested) <= described
