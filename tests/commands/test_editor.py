"""What users see in their editors: Red Hat's yaml-language-server (behind VS Code, Neovim, Helix
and more) run over LSP on our schema and examples, and Ajv, the validator of most Node tools.

The tools are pinned in tests/editor/package-lock.json (`npm ci --prefix tests/editor`). Without
node or them the tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.core.loader import Loader
from reconciler.core.yamlstrict import load_documents
from tests.commands.test_examples import INVALID, VALID, _mutations
from tests.conftest import NOW, ROOT
from tests.editor.lsp import HERE, Diagnostic, LanguageServer, require_node_tool, yaml_language_server

SCHEMA_FILE = ROOT / "schema" / "schedule.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
PUBLISHED = SCHEMA["$id"]
VSCODE_SETTINGS = json.loads((ROOT / "examples" / "editors" / "vscode" / "settings.json").read_text())
ERROR = 1

# The shipped VS Code settings, with the published address swapped for this checkout's schema
# (no test fetches anything), and globs that also take in this repository's examples.
GLOBS = VSCODE_SETTINGS["yaml.schemas"][PUBLISHED]
SETTINGS = {"yaml": {"schemaStore": {"enable": False}, "yamlVersion": VSCODE_SETTINGS["yaml.yamlVersion"],
                     "schemas": {SCHEMA_FILE.as_uri(): [*GLOBS, "examples/**/*.yaml"]}}}

WHEN = "set exactly one of cron, every, at or after"
WHAT = "set exactly one of command or http"
NAME = "a name is 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
CRON = 'five fields, minute hour day-of-month month day-of-week, such as "0 2 * * *", or a nickname such as @daily'

# Every error the editor shows for each invalid example the schema (or YAML itself) can catch.
EDITOR_CATCHES: dict[str, list[tuple[int, int, str]]] = {
    "argv-with-nul.yaml": [(5, 28, "an argument cannot contain a NUL character (\\0): no program can receive it")],
    "bad-duration.yaml": [(7, 12, "a duration such as 500ms, 90s, 15m, 1h30m or 2d, or a number of seconds")],
    "bad-name.yaml": [(3, 7, NAME)],
    "limits-memory-unit.yaml": [
        (5, 58, "a size such as 512Mi, 2Gi or 100M (Ki, Mi, Gi are powers of 1024), or a number of bytes")],
    "command-as-shell-string.yaml": [
        (6, 12, "write the command as a list, [program, argument, ...]: it runs without a shell")],
    "cron-and-every.yaml": [(6, 3, WHEN)],
    "cron-six-fields.yaml": [(5, 9, CRON)],
    "duplicate-key.yaml": [(6, 1, "Map keys must be unique")],
    "header-value-not-ascii.yaml": [(9, 16, (
        "a header value is visible ASCII characters, with spaces or tabs only between them (RFC 9110): no line "
        "breaks, control characters or letters such as é (percent-encode or base64 them)"))],
    "missing-run.yaml": [(3, 1, 'Missing property "run".')],
    "name-with-trailing-newline.yaml": [(4, 7, NAME)],
    "unknown-field.yaml": [(3, 1, 'Missing property "schedule".'), (5, 1, "Property scheduel is not allowed.")],
    "unknown-time-zone.yaml": [(6, 13, "an IANA time zone name such as Europe/Berlin, America/New_York or UTC")],
    "unquoted-cron.yaml": [(5, 9, CRON), (5, 14, "Unexpected alias at node end"),
                           (5, 16, "Unexpected alias at node end"), (5, 18, "Unexpected alias at node end"),
                           (5, 20, "Unexpected alias at node end")],
    "unquoted-number-in-argv.yaml": [(5, 29, 'each argument is a string: quote numbers, such as "30"')],
    "yes-is-not-a-boolean.yaml": [(4, 10, "true or false (yes, no, on and off are not booleans here)")],
}
# The mistakes no schema can express, which only `validate` catches, and why.
ONLY_VALIDATE_CATCHES = {
    "anchors-and-aliases.yaml": "a schema sees values, not anchors; the editor only marks the anchor unused",
    "at-shifted-past-the-calendar.yaml": "the instant once its offset is applied (arithmetic on the timestamp)",
    "cron-croniter-last-friday.yaml": "cron's rules for a field (here croniter's spelling of an extension)",
    "cron-never-fires.yaml": "whether a day of a month ever comes takes the calendar",
    "cron-step-on-a-value.yaml": "cron's rules for a field, beyond the shape of five fields",
    "every-longer-than-a-year.yaml": "the sum of a duration's units (the schema bounds a number of seconds)",
    "start-after-end.yaml": "comparing two instants",
    "time-in-dst-gap.yaml": "the zone's daylight-saving rules",
    "url-invalid-ipv6.yaml": "whether a URL's host is one an HTTP client can request",
}


@pytest.fixture(scope="module")
def editor() -> Iterator[LanguageServer]:
    with yaml_language_server(ROOT, SETTINGS) as server:
        yield server


def errors(diagnostics: list[Diagnostic]) -> list[tuple[int, int, str]]:
    return [(d.line, d.column, d.message) for d in diagnostics if d.severity == ERROR]


def validate_lines(text: str) -> list[int]:
    result = Loader().load_bytes("f.yaml", text.encode(), NOW)
    return sorted({p.line for p in result.problems if p.severity == "error"})


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_document_of_every_valid_example_is_clean_in_the_editor(editor: LanguageServer, path: Path) -> None:
    assert editor.diagnostics(path) == []


def test_every_invalid_example_is_either_caught_by_the_editor_or_documented_as_validate_s() -> None:
    names = {p.name for p in INVALID}
    assert set(EDITOR_CATCHES) | set(ONLY_VALIDATE_CATCHES) == names
    assert not set(EDITOR_CATCHES) & set(ONLY_VALIDATE_CATCHES)


@pytest.mark.parametrize("name", sorted(EDITOR_CATCHES))
def test_the_editor_flags_an_invalid_example_where_validate_does(editor: LanguageServer, name: str) -> None:
    path = ROOT / "examples" / "invalid" / name
    got = errors(editor.diagnostics(path))
    assert got == EDITOR_CATCHES[name]
    expected = [int(line) for line in re.findall(r"^# expect: (\d+):", path.read_text(), re.M)]
    assert expected
    assert set(expected) <= {line for line, _, _ in got}


@pytest.mark.parametrize("name", sorted(ONLY_VALIDATE_CATCHES))
def test_what_no_schema_can_say_is_left_to_validate(editor: LanguageServer, name: str) -> None:
    path = ROOT / "examples" / "invalid" / name
    assert errors(editor.diagnostics(path)) == []
    assert validate_lines(path.read_text()), f"validate must catch it: {ONLY_VALIDATE_CATCHES[name]}"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('name: a\nschedule:\n  cron: "0 2 * * *"\n  every: 1h\nrun: {command: [x]}\n', [(4, 3, WHEN)],
                 id="cron and every"),
    pytest.param('name: a\nschedule:\n  every: 1h\n  cron: "0 2 * * *"\nrun: {command: [x]}\n', [(3, 3, WHEN)],
                 id="every before cron"),
    pytest.param("name: a\nschedule:\n  timezone: UTC\nrun: {command: [x]}\n", [(2, 1, WHEN)],
                 id="none of the three"),
    pytest.param('name: a\nschedule: {every: 1h}\nrun:\n  command: [x]\n  http: {url: "https://a.test/"}\n',
                 [(5, 3, WHAT)], id="command and http"),
    pytest.param("name: a\nschedule: {every: 1h}\nrun:\n  timeout: 5m\n", [(3, 1, WHAT)],
                 id="neither command nor http"),
    pytest.param(f"name: {'a' * 64}\nschedule: {{every: 1h}}\nrun: {{command: [x]}}\n",
                 [(1, 7, NAME)], id="a 64-character name"),
])
def test_one_of_rules_read_as_a_person_writes_them_at_validate_s_line(
        editor: LanguageServer, text: str, expected: list[tuple[int, int, str]]) -> None:
    got = errors(editor.diagnostics(ROOT / "schedules" / "rule.yaml", text))
    assert got == expected
    assert [line for line, _, _ in got] == validate_lines(text)


def _second_document_broken() -> str:
    text = (ROOT / "examples" / "multi-document.yaml").read_text()
    assert "\nname: logs-ship\n" in text
    return text.replace("\nname: logs-ship\n", "\nname: Logs_Ship\n")


def test_the_shipped_settings_check_every_document_of_a_multi_document_file() -> None:
    """A modeline is read per document: with one on the first line only, later documents go
    unchecked. The shipped settings associate the schema by path, which covers them all."""
    assert set(VSCODE_SETTINGS["yaml.schemas"]) == {PUBLISHED}
    text = _second_document_broken()
    line = text.splitlines().index("name: Logs_Ship") + 1
    path = ROOT / "schedules" / "multi-document.yaml"  # as it would stand in a schedules repository
    shipped = {"yaml": {"schemaStore": {"enable": False}, "yamlVersion": VSCODE_SETTINGS["yaml.yamlVersion"],
                        "schemas": {SCHEMA_FILE.as_uri(): GLOBS}}}
    with yaml_language_server(ROOT, shipped) as server:
        assert [ln for ln, _, _ in errors(server.diagnostics(path, text))] == [line]
    with yaml_language_server(ROOT, {"yaml": {"schemaStore": {"enable": False}}}) as bare:
        assert bare.diagnostics(path, text) == []  # the modeline alone: the second document is unchecked
    assert validate_lines(text) == [line]


def test_the_template_s_modeline_after_each_separator_checks_its_later_documents() -> None:
    template = (ROOT / "examples" / "schedules-repo" / "schedules" / "reports.yaml").read_text()
    text = template.replace(PUBLISHED, SCHEMA_FILE.as_uri()).replace("name: cache-refresh", "name: Cache_Refresh")
    line = text.splitlines().index("name: Cache_Refresh") + 1
    with yaml_language_server(ROOT, {"yaml": {"schemaStore": {"enable": False}}}) as bare:
        assert errors(bare.diagnostics(ROOT / "elsewhere" / "reports.yaml", text)) == [(line, 7, NAME)]


def test_the_skeleton_offered_in_an_empty_file_is_a_valid_schedule(editor: LanguageServer) -> None:
    uri = editor.open(ROOT / "schedules" / "new.yaml", "")
    items = editor.completion(uri, 1, 1)
    skeletons = [i for i in items if i["label"].startswith("schedule-reconciler:")]
    assert len(skeletons) == len(SCHEMA["defaultSnippets"])
    # yaml-language-server builds a "parent skeleton" (kind Class) from `required`; it would be invalid.
    assert [i["label"] for i in items if i.get("kind") == 7] == []
    for i, item in enumerate(skeletons):
        text = re.sub(r"\$\{\d+:([^}]*)\}|\$\d+", lambda m: m.group(1) or "", item["insertText"]) + "\n"
        assert editor.diagnostics(ROOT / "schedules" / f"skeleton-{i}.yaml", text) == [], item["label"]
        assert validate_lines(text) == []


def test_hovering_a_field_shows_what_to_write(editor: LanguageServer) -> None:
    text = 'name: a\nschedule:\n  every: 15m\nrun:\n  command: [x]\n  workdir: /tmp\n'
    uri = editor.open(ROOT / "schedules" / "hover.yaml", text)
    assert SCHEMA["properties"]["schedule"]["properties"]["every"]["description"] in editor.hover(uri, 3, 4)
    assert SCHEMA["properties"]["run"]["properties"]["workdir"]["description"] in editor.hover(uri, 6, 4)


def test_the_time_zones_are_completed_from_the_schema(editor: LanguageServer) -> None:
    uri = editor.open(ROOT / "schedules" / "zone.yaml", "name: a\nschedule:\n  every: 1h\n  timezone: \n")
    labels = {i["label"] for i in editor.completion(uri, 4, 13)}
    assert {"Europe/Berlin", "America/New_York", "UTC"} <= labels
    assert len(labels) > 400


def test_yaml_1_1_reads_yes_as_true_so_the_shipped_settings_ask_for_1_2() -> None:
    path = ROOT / "examples" / "invalid" / "yes-is-not-a-boolean.yaml"
    old = {"yaml": {"schemaStore": {"enable": False}, "yamlVersion": "1.1"}}
    with yaml_language_server(ROOT, old) as server:
        assert errors(server.diagnostics(path)) == []  # only validate would catch it
    assert VSCODE_SETTINGS["yaml.yamlVersion"] == "1.2"


# ---- Ajv ----------------------------------------------------------------------------------------

def _ajv(documents: list[Any]) -> dict[str, Any]:
    script = HERE / "ajv_check.js"
    node = require_node_tool(HERE / "node_modules" / "ajv" / "package.json")
    r = subprocess.run([node, str(script), str(SCHEMA_FILE)], input=json.dumps(documents), capture_output=True,
                       text=True, timeout=60, check=False)
    out: dict[str, Any] = json.loads(r.stdout) if r.stdout.strip() else {"error": r.stderr}
    assert r.returncode == 0, out
    return out


def test_ajv_in_strict_mode_loads_the_schema_and_agrees_with_validate_s_schema() -> None:
    documents: list[Any] = []
    for path in VALID + INVALID:
        docs, _ = load_documents(path.read_text(), str(path))
        documents.extend(d.value for d in docs)
    rng = random.Random(5)
    for path in VALID[:4]:
        for doc in load_documents(path.read_text(), str(path))[0]:
            documents.extend(_mutations(doc.value, rng))
    out = _ajv(documents)
    assert out["logged"] == []
    reference = jsonschema.Draft202012Validator(SCHEMA)
    assert out["valid"] == [reference.is_valid(d) for d in documents]
    assert 0.2 < out["valid"].count(False) / len(documents) < 0.9
