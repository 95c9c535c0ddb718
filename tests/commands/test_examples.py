"""Every file in examples/ is valid; every file in examples/invalid/ fails with its `# expect:` lines."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from reconciler.core.loader import Loader
from reconciler.core.schema import FastEngine
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


ENGINES = ["fastjsonschema", "jsonschema-rs"]  # the daemon's and validate's


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
def test_fast_and_full_validators_agree_on_every_example(path: Path, engine: FastEngine) -> None:
    from reconciler.core.schema import SchemaValidator
    from reconciler.core.yamlstrict import decode, load_documents

    validator = SchemaValidator(fast=engine)
    text, _ = decode(path.read_bytes(), str(path))
    assert text is not None
    docs, _ = load_documents(text, str(path))
    for doc in docs:
        assert validator.is_valid(doc.value) == validator._full.is_valid(doc.value)


_ODD_VALUES: list[object] = [None, True, 0, -1, 1.5, "", "x", "10s", "0s", "-5m", "12:30", "0 2 * * *",
                             "Europe/Nowhere", "https://example.test/x", "2030-01-01T00:00:00Z", [], ["a", 1],
                             {}, {"from_env": "X"}, {"from_env": "x y"}, "a" * 300]


def _mutations(value: object, rng: random.Random) -> list[object]:
    """Documents one edit away from `value`: a field dropped, retyped or added, anywhere."""
    out: list[object] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append({k: v for k, v in value.items() if k != key})
            out.extend({**value, key: odd} for odd in rng.sample(_ODD_VALUES, 10))
            out.extend({**value, key: m} for m in _mutations(child, rng))
        out.append({**value, "unexpected": 1})
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.append(value[:i] + value[i + 1:])
            out.extend([*value[:i], m, *value[i + 1:]] for m in _mutations(child, rng))
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_fast_and_full_validators_agree_on_mutations_of_every_example(engine: FastEngine) -> None:
    from reconciler.core.schema import SchemaValidator
    from reconciler.core.yamlstrict import load_documents

    validator = SchemaValidator(fast=engine)
    rng = random.Random(2026)
    checked = invalid = 0
    for path in VALID:
        docs, _ = load_documents(path.read_text(), str(path))
        for doc in docs:
            for mutant in _mutations(doc.value, rng):
                fast, full = validator.is_valid(mutant), validator._full.is_valid(mutant)
                assert fast == full, (path.name, mutant)
                checked, invalid = checked + 1, invalid + (not full)
    # The mutations must reach both verdicts often, or the agreement says little.
    assert checked > 1500
    assert 0.3 < invalid / checked < 0.95, (checked, invalid)
