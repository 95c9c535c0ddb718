"""The first, untracked reading of a file: the values of the tracked one, and a hand-over at anything irregular."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.core import yamlstrict
from reconciler.core.yamlstrict import _read, _Untracked

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


def values(text: str, *, track: bool) -> tuple[list[Any], list[object]]:
    docs, problems = _read(text, "x.yaml", track=track)
    return [d.value for d in docs], [(p.line, p.column, p.message) for p in problems]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_untracked_reading_gives_every_example_the_values_of_the_tracked_one(path: Path) -> None:
    text = path.read_text()
    try:
        fast = values(text, track=False)
    except _Untracked:  # an example that shows a mistake: the tracked reading speaks for it
        return
    assert fast == values(text, track=True)


MIXED = ("a: 1\nb: -2.5e3\nc: true\nd: ~\ne: '7'\nf: [x, 0755, 12:30, {g: null, h: \"\"}]\ni: 1e400\n"
         "\"l\": .5\nm: +3\n")


def test_the_untracked_reading_types_scalars_as_the_tracked_one_does() -> None:
    fast, problems = values(MIXED, track=False)
    assert (fast, problems) == values(MIXED, track=True)
    assert problems == []
    assert fast[0]["f"] == ["x", "0755", "12:30", {"g": None, "h": ""}]
    assert (fast[0]["b"], fast[0]["m"], fast[0]["l"]) == (-2500.0, 3, 0.5)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: 2\n",  # an anchor
    "a: 1\nb: *x\n",  # an alias (a syntax problem for libyaml, or an alias)
    "a: !!int 1\n",  # a tag on a value
    "!!map {a: 1}\n",  # a tag on a mapping
    "a: [!!str x]\n",  # a tag in a list
    "a: 1\na: 2\n",  # a duplicate key
    "[1, 2]: x\n",  # a key that is not a scalar
    "&k a: 1\n",  # an anchor on a key
    "a: " + "1" * 5000 + "\n",  # an integer Python will not read
    "a: " + "[" * 66 + "]" * 66 + "\n",  # deeper than MAX_DEPTH
    "a: " + "{b: " * 65 + "1" + "}" * 65 + "\n",  # a scalar below MAX_DEPTH mappings
], ids=["anchor", "alias", "tag", "map-tag", "list-tag", "duplicate", "complex-key", "key-anchor", "huge-int",
        "deep-list", "deep-map"])
def test_the_untracked_reading_hands_over_at_whatever_the_tracked_one_reports(text: str) -> None:
    _, tracked = _read(text, "x.yaml", track=True)
    if tracked and tracked[0].message.startswith("YAML syntax error"):
        pytest.skip("libyaml refuses it before either reading sees a node")
    assert tracked, "the tracked reading must report this text"
    with pytest.raises(_Untracked):
        _read(text, "x.yaml", track=False)
    assert yamlstrict.load_documents(text, "x.yaml")[1] == tracked
