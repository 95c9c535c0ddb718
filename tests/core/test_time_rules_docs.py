"""Issue 17's "the README and docs/schedule-format.md document every field": every time-rule
field the JSON Schema (and the calendar file reader) knows is named in both, so that a field added
later without its documentation fails here."""

from __future__ import annotations

import json

import pytest

from reconciler.core import timerules
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "schema" / "schedule.schema.json").read_text())
DOCS = (ROOT / "docs" / "schedule-format.md").read_text()
README = (ROOT / "README.md").read_text()
WINDOW = sorted(SCHEMA["$defs"]["window"]["properties"])
CALENDAR = sorted(SCHEMA["properties"]["calendar"]["properties"])
POLICY = ("outside", "manual")  # the policy fields of the time rules
FILE_FIELDS = sorted(set(timerules._CALENDAR_FIELDS) - {"description"})


@pytest.mark.parametrize("field", WINDOW)
def test_every_window_field_is_documented(field: str) -> None:
    assert f"`windows[].{field}`" in DOCS or f"`{field}`" in DOCS
    assert f"`{field}`" in README


@pytest.mark.parametrize("field", CALENDAR)
def test_every_calendar_field_of_a_schedule_is_documented(field: str) -> None:
    assert f"`calendar.{field}`" in DOCS
    assert f"`calendar.{field}`" in README


@pytest.mark.parametrize("field", POLICY)
def test_the_policy_fields_of_the_time_rules_are_documented(field: str) -> None:
    assert field in SCHEMA["properties"]["policy"]["properties"]
    assert f"`policy.{field}`" in DOCS
    assert f"`policy.{field}`" in README


@pytest.mark.parametrize("field", FILE_FIELDS)
def test_every_field_of_a_calendar_file_is_documented(field: str) -> None:
    assert f"| `{field}` |" in DOCS  # a row of the calendar file's table
    assert f"`{field}`" in README
