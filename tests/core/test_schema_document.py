"""The published schema as a document for editors: every field explained, examples and skeletons
that are valid, a fetchable address, the zones of tzdata, and never stricter than `validate`."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from reconciler.core.loader import Loader, zone
from reconciler.core.schema import SchemaValidator, schema_text
from reconciler.core.yamlstrict import Document, load_documents
from scripts import gen_schema_zones
from tests.commands.test_examples import VALID, _mutations
from tests.conftest import NOW, ROOT

SCHEMA: dict[str, Any] = json.loads(schema_text())
PUBLISHED = "https://schedule-reconciler.github.io/schema/v1/schedule.schema.json"
BASE: dict[str, Any] = {"name": "a", "schedule": {"every": "1h"}, "run": {"command": ["x"]},
                        "notify": [{"url": "https://hooks.test/x"}]}


def fields(schema: Any, at: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every named field, wherever it is declared (branches and $defs too), with its schema path."""
    if isinstance(schema, dict):
        for key, sub in schema.items():
            if key == "properties" and isinstance(sub, dict):
                for name, field in sub.items():
                    if isinstance(field, dict):  # `false` forbids a field in a one-of branch
                        yield (*at, key, name), field
            yield from fields(sub, (*at, key))
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            yield from fields(sub, (*at, str(i)))


LOADER = Loader()  # compiling the schema costs milliseconds: once for the module


def errors(value: dict[str, Any]) -> list[str]:
    return [p.message for p in LOADER.check(Document(0, value, 1), "f.yaml", NOW) if p.severity == "error"]


def test_every_field_has_a_description_for_the_person_hovering_over_it() -> None:
    found = list(fields(SCHEMA))
    assert len(found) >= 46
    assert [".".join(at) for at, f in found if not f.get("description")] == []


def _document_with(at: tuple[str, ...], value: Any) -> dict[str, Any] | None:
    """BASE with `value` at the field of schema path `at`, or None for a field inside $defs."""
    if at[0] != "properties":
        return None
    doc = copy.deepcopy(BASE)
    keys = [k for k in at if k != "properties"]
    if keys[:2] == ["run", "http"]:
        doc["run"] = {"http": {"url": "https://a.test/"}}
    if keys[0] == "schedule" and keys[1] in ("cron", "at", "after"):
        doc["schedule"] = {}
    if keys[0] == "requires" and len(keys) > 2:
        doc["requires"] = [{"schedule": "self"}]
    parent: Any = doc
    for k in keys[:-1]:
        parent = parent[0] if k == "items" else parent.setdefault(k, {})
    parent[keys[-1]] = value
    return doc


def test_every_example_in_the_schema_is_valid_where_it_stands() -> None:
    checked = 0
    for at, field in fields(SCHEMA):
        for example in field.get("examples", []):
            doc = _document_with(at, example)
            if doc is not None:
                assert errors(doc) == [], (at, example)
                checked += 1
    assert checked >= 15


def _expand(snippet: str) -> str:
    """A snippet as inserted when every placeholder is left as offered."""
    return re.sub(r"\$\{\d+:([^}]*)\}|\$\d+", lambda m: m.group(1) or "", snippet)


def test_the_skeletons_offered_for_a_new_file_are_valid_schedules() -> None:
    snippets = SCHEMA["defaultSnippets"]
    assert len(snippets) >= 1
    for s in snippets:
        result = Loader().load_bytes("new.yaml", _expand(s["bodyText"]).encode(), NOW)
        assert result.problems == (), s["label"]
        assert len(result.schedules) == 1


@pytest.mark.parametrize(("field", "around"), [
    ("schedule", "name: a\nschedule:\n  {}\nrun: {{command: [x]}}\n"),
    ("run", "name: a\nschedule: {{every: 1h}}\nrun:\n  {}\n"),
])
def test_the_snippets_offered_for_schedule_and_run_are_valid(field: str, around: str) -> None:
    snippets = SCHEMA["properties"][field]["defaultSnippets"]
    assert len(snippets) >= 2
    for s in snippets:
        text = around.format(_expand(s["bodyText"]).replace("\n", "\n  "))
        assert Loader().load_bytes("f.yaml", text.encode(), NOW).problems == (), s["label"]


def test_the_schema_has_a_published_versioned_address() -> None:
    assert SCHEMA["$id"] == PUBLISHED


def test_every_document_of_the_schedules_repository_template_points_at_the_published_schema() -> None:
    lines = (ROOT / "examples" / "schedules-repo" / "schedules" / "reports.yaml").read_text().splitlines()
    heads = [lines[0]] + [lines[i + 1] for i, line in enumerate(lines) if line == "---"]
    assert len(heads) == 2
    assert heads == [f"# yaml-language-server: $schema={PUBLISHED}"] * 2


def _installed_is_older(than: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v))
    return parts(gen_schema_zones.tzdata_version()) < parts(than)


def _generated_from() -> str:
    found = re.search(r"tzdata (\S+),", SCHEMA["$defs"]["timezone"]["$comment"])
    assert found, "the timezone enum does not say which tzdata it lists"
    return found.group(1)


def test_the_zone_names_are_those_of_tzdata_as_the_generator_writes_them() -> None:
    version = _generated_from()
    if _installed_is_older(version):
        pytest.skip(f"the schema lists the zones of tzdata {version}; this environment has an older "
                    f"{gen_schema_zones.tzdata_version()}")
    text = schema_text()
    # Stale after a tzdata upgrade? Run: .venv/bin/python scripts/gen_schema_zones.py
    assert text == gen_schema_zones.render(text, gen_schema_zones.zone_names(), version)


def test_every_zone_an_editor_offers_is_one_validate_accepts() -> None:
    if _installed_is_older(_generated_from()):
        pytest.skip("this environment's tzdata is older than the schema's zone list")
    names = SCHEMA["$defs"]["timezone"]["enum"]
    assert len(names) > 400
    assert [n for n in names if zone(n) is None] == []


def test_validate_does_not_carry_the_editor_only_zone_list_and_cron_pattern() -> None:
    # validate checks both itself, with better messages; a 600-name enum would also slow every file.
    defs = SchemaValidator().schema["$defs"]
    assert "enum" not in defs["timezone"]
    assert "pattern" not in defs["cron"]
    assert "enum" in SCHEMA["$defs"]["timezone"]
    assert "pattern" in SCHEMA["$defs"]["cron"]



_CRONS = ["0 0 2 * * *", "", "  ", "@daily", "@reboot", "@nightly", "0 2 * *", "0\t2 * * *", " 0 2 * * * ",
          "0 2 * * * *", "61 2 * * *", "5/15 * * * *", "0 0 30 2 *", "@daily 0", "x y z w v"]
_ZONES = ["Europe/Berln", "", "europe/berlin", "UTC", "US/Eastern", "Etc/GMT+1", " UTC", "Mars/Olympus"]


def test_whatever_the_published_schema_refuses_validate_refuses_too() -> None:
    """An editor never flags what `validate` accepts (the other way round is expected: validate
    also checks what no schema can say, such as a cron day that never comes)."""
    editor = jsonschema.Draft202012Validator(SCHEMA)
    rng = random.Random(13)
    documents: list[Any] = [{**BASE, "schedule": {"cron": c}} for c in _CRONS]
    documents += [{**BASE, "schedule": {"every": "1h", "timezone": z}} for z in _ZONES]
    for path in VALID:
        for doc in load_documents(path.read_text(), str(path))[0]:
            documents.extend(_mutations(doc.value, rng))
    refused = 0
    for d in documents:
        if isinstance(d, dict) and not editor.is_valid(d):
            refused += 1
            assert errors(d), d
    assert refused > 1000


EDITORS = ROOT / "examples" / "editors"


def test_the_shipped_editor_settings_map_the_published_schema_to_the_schedules_directory() -> None:
    vscode = json.loads((EDITORS / "vscode" / "settings.json").read_text())
    globs = vscode["yaml.schemas"][PUBLISHED]
    assert globs == ["schedules/**/*.yaml", "schedules/**/*.yml"]
    lua = (EDITORS / "neovim" / "yamlls.lua").read_text()
    assert f'["{PUBLISHED}"] = {{' in lua
    assert all(f'"{g}"' in lua for g in globs)
    xml = (EDITORS / "jetbrains" / "jsonSchemas.xml").read_text()
    assert f'name="relativePathToSchema" value="{PUBLISHED}"' in xml
    assert '<option name="path" value="schedules" />' in xml


def test_the_schemastore_entry_is_the_one_documented_and_points_at_the_published_schema() -> None:
    entry = json.loads((EDITORS / "schemastore-catalog-entry.json").read_text())
    assert entry["url"] == PUBLISHED
    assert entry["fileMatch"] == ["schedules/**/*.yaml", "schedules/**/*.yml"]
    docs = (ROOT / "docs" / "schedule-format.md").read_text()
    block = docs[docs.index("**SchemaStore.**"):]
    documented = re.search(r"```json\n(.*?)```", block, re.S)
    assert documented is not None
    assert json.loads(documented.group(1)) == entry
