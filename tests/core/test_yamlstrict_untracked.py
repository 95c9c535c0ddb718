"""The first, untracked reading of a file: the values of the tracked one, and a hand-over at anything irregular."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("size", [0, 1, 4096, yamlstrict.MAX_FILE_BYTES, yamlstrict.MAX_FILE_BYTES + 1,
                                  3 * yamlstrict.MAX_FILE_BYTES])
def test_a_file_is_read_whole_up_to_one_byte_past_the_limit(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f.yaml").write_bytes(data)
    assert yamlstrict.read_capped(tmp_path / "f.yaml") == data[:yamlstrict.MAX_FILE_BYTES + 1]


def test_a_file_whose_size_the_system_does_not_know_is_read_whole(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_bytes(b"name: x\n" * 1000)
    real = os.fstat

    class Zero:
        st_size = 0  # as /proc reports, or a file that grew after it was measured

    monkeypatch.setattr(os, "fstat", lambda fd: Zero() if fd > 2 else real(fd))
    assert yamlstrict.read_capped(str(tmp_path / "f.yaml")) == b"name: x\n" * 1000


def test_reading_a_directory_fails_as_opening_it_did(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as e:
        yamlstrict.read_capped(tmp_path)
    assert e.value.strerror == "Is a directory"
