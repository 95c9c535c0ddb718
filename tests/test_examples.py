"""Every file in examples/ is valid; every file in examples/invalid/ fails with its `# expect:` lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.core.loader import Loader
from tests.conftest import NOW, ROOT

VALID = sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "schedules").glob("*.yaml"))
INVALID = sorted((ROOT / "examples" / "invalid").glob("*.yaml"))
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)")


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_example_is_valid_and_builds_schedules(path: Path) -> None:
    result = Loader().load_bytes(str(path), path.read_bytes(), NOW)
    assert result.problems == ()
    assert result.schedules


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_reports_its_expected_problem(path: Path) -> None:
    expected = re.findall(r"^# expect: (\d+):(\d+): (.+)$", path.read_text(), re.M)
    assert expected, f"{path.name} lacks an '# expect: LINE:COL: message' line"
    result = Loader().load_bytes(str(path), path.read_bytes(), NOW)
    assert result.schedules == ()
    got = [(p.line, p.column, p.message) for p in result.problems if p.severity == "error"]
    for line, col, message in expected:
        assert any((ln, c) == (int(line), int(col)) and message in m for ln, c, m in got), got


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
def test_example_carries_a_modeline_pointing_at_the_schema(path: Path) -> None:
    m = MODELINE.match(path.read_text().splitlines()[0])
    assert m is not None
    assert (path.parent / m.group(1)).resolve() == ROOT / "schema" / "schedule.schema.json"


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
def test_fast_and_full_validators_agree_on_every_example(path: Path) -> None:
    from reconciler.core.schema import SchemaValidator
    from reconciler.core.yamlstrict import decode, load_documents

    validator = SchemaValidator()
    text, _ = decode(path.read_bytes(), str(path))
    assert text is not None
    docs, _ = load_documents(text, str(path))
    for doc in docs:
        assert validator.is_valid(doc.value) == validator._full.is_valid(doc.value)
