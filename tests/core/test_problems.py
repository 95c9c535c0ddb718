"""How problems are written: one line each, nothing unprintable, never the whole of a value."""

from __future__ import annotations

import pytest

from reconciler.core.problems import Problem, display_path, excerpt, printable


def test_a_file_name_with_a_newline_cannot_forge_a_second_problem_line() -> None:
    p = Problem("a.yaml\nforged.yaml:1:1: $: fake.yaml", 2, 3, ("name",), "bad")
    assert p.format_text() == "a.yaml\\nforged.yaml:1:1: $: fake.yaml:2:3: $.name: bad"


@pytest.mark.parametrize(("text", "shown"), [
    ("tab\there", "tab\\there"),
    ("cr\rlf\n", "cr\\rlf\\n"),
    ("esc\x1b[31m", "esc\\x1b[31m"),
    ("del\x7f c1\x85", "del\\x7f c1\\x85"),
    ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
    ("bidi\u202egnp.yaml", "bidi\\u202egnp.yaml"),
    ("byte\udcff", "byte\\xff"),
    ("café ✓", "café ✓"),
])
def test_printable_escapes_what_a_terminal_would_act_on(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_a_message_is_one_line_too() -> None:
    p = Problem("f.yaml", 1, 1, (), "also at x\ny.yaml:3", severity="warning")
    assert p.format_text() == "f.yaml:1:1: $: warning: also at x\\ny.yaml:3"


def test_a_name_that_is_not_utf8_becomes_valid_text() -> None:
    shown = display_path("dir/a\udcff\udcfe.yaml")
    assert shown == "dir/a\\xff\\xfe.yaml"
    shown.encode("utf-8")  # would raise for the surrogates
    assert display_path("dir/café.yaml") == "dir/café.yaml"
    assert display_path("lone\ud800") == "lone\\ud800"


@pytest.mark.parametrize(("value", "shown"), [
    ("Europe/Berln", "'Europe/Berln'"),
    ("a\nb", "'a\\nb'"),
    ("x" * 24, "'" + "x" * 24 + "'"),
    ("x" * 25, "'" + "x" * 24 + "'... (25 characters)"),
    ("s3cr3t\u2028" * 10, "'s3cr3t\\u2028s3cr3t\\u2028s3cr3t\\u2028s3c'... (70 characters)"),
    (8080, "8080"),
    (10 ** 30, "100000000000000000000000... (31 characters)"),
    pytest.param(10 ** 5000, "a number of more than 4300 digits", id="huge"),
    (1.5, "1.5"),
    (True, "true"),
    (None, "null"),
    ({"a": "secret"}, "a mapping"),
    (["secret"], "a list"),
])
def test_an_excerpt_is_short_and_escaped(value: object, shown: str) -> None:
    assert excerpt(value) == shown
