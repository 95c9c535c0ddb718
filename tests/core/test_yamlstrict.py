"""The strict YAML rules, each with the exact line and column reported."""

from __future__ import annotations

import sys

import pytest

from reconciler.core import yamlstrict
from reconciler.core.yamlstrict import decode, load_documents


def load(text: str) -> tuple[list[object], list[tuple[int, int, str]]]:
    docs, problems = load_documents(text, "f.yaml")
    return [d.value for d in docs], [(p.line, p.column, p.message) for p in problems]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "True", "NO"])
def test_yaml_11_booleans_stay_strings(word: str) -> None:
    values, problems = load(f"a: {word}\n")
    assert values == [{"a": word}]
    assert problems == []


def test_only_lowercase_true_and_false_are_booleans() -> None:
    assert load("a: true\nb: false\n")[0] == [{"a": True, "b": False}]


@pytest.mark.parametrize(("text", "value"), [
    ("2026-01-01", "2026-01-01"),  # no implicit timestamps
    ("12:30", "12:30"),  # no sexagesimal numbers
    ("0755", "0755"),  # no octal
    ("0o755", "0o755"),
    ("0x1F", "0x1F"),
    ("1_000", "1_000"),
    (".inf", ".inf"),
    ("42", 42),
    ("-7", -7),
    ("1.5", 1.5),
    ("1e3", 1000.0),
    ("007.5", "007.5"),
    ("1.", 1.0),
    ("~", None),
    ("null", None),
    ("'42'", "42"),  # quoted scalars are always strings
    ('"true"', "true"),
])
def test_plain_scalars_resolve_without_surprises(text: str, value: object) -> None:
    assert load(f"a: {text}\n")[0] == [{"a": value}]


def test_keys_are_always_strings() -> None:
    assert load("on: 1\n1: x\ntrue: y\n")[0] == [{"on": 1, "1": "x", "true": "y"}]


def test_duplicate_keys_name_both_lines_and_the_rest_is_still_read() -> None:
    values, problems = load("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert values == [{"a": 1, "b": {"c": 1}}]
    assert problems == [(4, 3, "duplicate key 'c' (first defined at line 3)"),
                        (5, 1, "duplicate key 'a' (first defined at line 1)")]


@pytest.mark.parametrize(("text", "where", "message"), [
    ("a: &x 1\n", (1, 4), "anchors (&x) are not allowed"),
    ("a: 1\nb:\n  - *x\n", (3, 5), "aliases (*x) are not allowed"),  # libyaml refuses an unknown alias
    ("a: !!python/object:os.system x\n", (1, 4), "tags (tag:yaml.org,2002:python/object:os.system) are not allowed"),
    ("a: !!str 5\n", (1, 4), "tags (tag:yaml.org,2002:str) are not allowed"),
    ("a: !custom 5\n", (1, 4), "tags (!custom) are not allowed"),
])
def test_anchors_aliases_and_tags_are_rejected(text: str, where: tuple[int, int], message: str) -> None:
    _, problems = load(text)
    assert len(problems) == 1
    assert problems[0][:2] == where
    assert message in problems[0][2]


def test_an_alias_to_a_known_anchor_is_rejected_at_the_anchor() -> None:
    _, problems = load("a: &x [1]\nb: *x\n")
    assert problems[0][:2] == (1, 4)
    assert "anchors (&x)" in problems[0][2]


def test_a_billion_laughs_file_costs_nothing() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    values, problems = load(bomb)
    assert values == []
    assert "anchors (&a)" in problems[0][2]


def test_nesting_depth_is_bounded_before_objects_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlstrict, "MAX_DEPTH", 5)
    _, problems = load("a: " + "[" * 10 + "]" * 10 + "\n")
    assert problems == [(1, 9, "nesting deeper than 5 levels")]


def test_deep_nesting_at_the_default_limit_is_an_error_not_a_crash() -> None:
    _, problems = load("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nesting deeper than 64 levels" in problems[0][2]


def test_document_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlstrict, "MAX_DOCUMENTS", 3)
    _, problems = load("---\na: 1\n" * 5)
    assert problems == [(7, 1, "more than 3 documents in one file")]


def test_file_size_is_bounded_before_parsing() -> None:
    text, problems = decode(b"a: 1\n" * 300_000, "f.yaml")
    assert text is None
    assert problems[0].message == "file is larger than 1048576 bytes (1 MiB), the limit for a schedule file"


def test_a_file_that_is_not_utf8_names_the_line_of_the_bad_byte() -> None:
    text, problems = decode(b"name: x\ndescription: caf\xe9\n", "f.yaml")
    assert text is None
    assert (problems[0].line, problems[0].column) == (2, 17)
    assert "not valid UTF-8 (byte 0xe9)" in problems[0].message


def test_nul_bytes_are_an_error_with_a_utf16_hint() -> None:
    _, problems = decode("name: x\n".encode("utf-16"), "f.yaml")
    assert "NUL byte" in problems[0].message
    assert "UTF-16" in problems[0].message


def test_a_utf8_bom_is_tolerated() -> None:
    text, problems = decode(b"\xef\xbb\xbfname: x\n", "f.yaml")
    assert (text, problems) == ("name: x\n", [])


def test_syntax_errors_report_the_line_of_the_problem() -> None:
    _, problems = load("name: x\nrun:\n  command: [a, b\nschedule: {}\n")
    assert problems[0][0] == 4
    assert problems[0][2].startswith("YAML syntax error")


def test_empty_documents_are_skipped_and_each_document_keeps_its_index() -> None:
    docs, problems = load_documents("---\n---\na: 1\n---\nb: 2\n", "f.yaml")
    assert [(d.index, d.value, d.line) for d in docs] == [(0, {"a": 1}, 3), (1, {"b": 2}, 5)]  # root node lines
    assert problems == []


def test_locations_point_at_values_and_keys() -> None:
    docs, _ = load_documents("a:\n  b: [x, {c: 1}]\n", "f.yaml")
    d = docs[0]
    assert d.locations[("a", "b", 1, "c")] == (2, 14)
    assert d.key_locations[("a", "b")] == (2, 3)
    assert d.location(("a", "b", 0, "missing")) == (2, 7)


@pytest.mark.parametrize(("text", "message"), [
    ("name: a\nschedule:\n  cron: * * * * *\n",
     "YAML syntax error: an unquoted value cannot start with '*' (YAML reads it as an alias): "
     "quote the expression: cron: \"* * * * *\""),
    ("name: a\nschedule:\n  cron: */5 8-18 * * mon-fri\n",
     "YAML syntax error: an unquoted value cannot start with '*' (YAML reads it as an alias): "
     "quote the expression: cron: \"*/5 8-18 * * mon-fri\""),
    ("name: a\nschedule: {cron: * * * * *}\n",
     "YAML syntax error: an unquoted value cannot start with '*' (YAML reads it as an alias): "
     "quote the expression, e.g. cron: \"* * * * *\""),
])
def test_an_unquoted_cron_expression_is_told_to_be_quoted(text: str, message: str) -> None:
    _, problems = load(text)
    assert [m for *_, m in problems] == [message]
    assert problems[0][0] == text.count("\n")


@pytest.mark.parametrize(("text", "where"), [
    ("name: a\nschedule:\n\tcron: '0 2 * * *'\n", (3, 1)),
    ("name: a\nschedule:\n  \tcron: '0 2 * * *'\n", (3, 3)),
    ("run:\n  command:\n\t- x\n", (3, 1)),
    ("description: a\n\tb\nname: x\n", (2, 1)),
])
def test_a_tab_in_the_indentation_says_tabs_cannot_indent_yaml(text: str, where: tuple[int, int]) -> None:
    _, problems = load(text)
    assert problems == [(*where, "YAML syntax error: tabs cannot indent YAML: indent with spaces")]


def test_other_syntax_errors_keep_libyaml_s_words() -> None:
    _, problems = load("a: [1, 2\nb: 3\n")
    assert problems[0][2].startswith("YAML syntax error: while parsing a flow sequence")


def test_libyamls_own_nesting_limit_never_speaks_before_ours() -> None:
    # PyYAML 6.0.3+ bundles a libyaml that looks ahead and stops at 1,000 flow levels.
    _, problems = load("name: x\n---\n# deep\na: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems == [(4, 68, "nesting deeper than 64 levels")]


def test_nesting_beyond_libyamls_limit_is_still_our_problem_at_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlstrict, "MAX_DEPTH", 5000)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # the reader recurses once per level
    try:
        _, problems = load("a: 1\nb: " + "[" * 6000 + "]" * 6000 + "\n")
    finally:
        sys.setrecursionlimit(limit)
    assert [(line, message) for line, _, message in problems] == [(2, "nesting deeper than 5000 levels")]


@pytest.mark.parametrize(("char", "name"), [("\u2028", "U+2028 (LINE SEPARATOR)"),
                                            ("\u2029", "U+2029 (PARAGRAPH SEPARATOR)"),
                                            ("\x85", "U+0085 (NEL (next line))")])
def test_a_line_break_only_libyaml_sees_is_rejected_where_it_stands(char: str, name: str) -> None:
    # An editor shows one line with a comment; libyaml would read a second line with a live key.
    values, problems = load(f"name: x\nrun:\n  command: [x] # c{char}  workdir: /\n")
    assert values == []
    assert len(problems) == 1
    line, col, message = problems[0]
    assert (line, col) == (3, 19)
    assert message.startswith(f"character {name} is not allowed")


@pytest.mark.parametrize(("char", "code"), [("\x01", "U+0001"), ("\x07", "U+0007"), ("\x0b", "U+000B"),
                                            ("\x0c", "U+000C"), ("\x1b", "U+001B"), ("\x7f", "U+007F"),
                                            ("\x80", "U+0080"), ("\x9f", "U+009F")])
def test_a_control_character_is_reported_at_its_line_and_column(char: str, code: str) -> None:
    _, problems = load(f"name: x\r\ndescription: 'ab{char}'\n")
    assert problems == [(2, 17, f"control character {code} is not allowed; write \\u{code[2:].lower()} "
                                "in a double-quoted string if you mean it")]


@pytest.mark.parametrize("char", ["\ufffe", "\uffff"])
def test_a_non_character_is_reported_at_its_line_and_column(char: str) -> None:
    _, problems = load(f"a: 1\n\nb: x{char}\n")
    assert [(line, col) for line, col, _ in problems] == [(3, 5)]
    assert problems[0][2].startswith(f"non-character U+{ord(char):04X} is not allowed")


def test_lines_are_counted_as_libyaml_counts_them_with_lone_carriage_returns() -> None:
    _, problems = load("a: 1\rb: 2\r\nc: \x07\n")
    assert [(line, col) for line, col, _ in problems] == [(3, 4)]


def test_tabs_and_escaped_controls_in_double_quotes_are_fine() -> None:
    assert load('a: "x\\u2028y\\ab"\nb:\t1\n') == ([{"a": "x\u2028y\x07b", "b": 1}], [])


def test_empty_documents_count_toward_the_document_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlstrict, "MAX_DOCUMENTS", 3)
    _, problems = load("---\n" * 5)
    assert problems == [(4, 1, "more than 3 documents in one file")]


def test_a_file_of_lone_document_markers_stops_at_the_default_limit() -> None:
    _, problems = load("---\n" * 250_000)
    assert problems == [(1001, 1, "more than 1000 documents in one file")]
