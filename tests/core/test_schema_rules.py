"""The schema's rules as `validate` words them: one problem per mistake, at the field to change."""

from __future__ import annotations

from reconciler.core.loader import Loader
from tests.conftest import NOW


def problems(text: str) -> list[tuple[int, int, str, str]]:
    result = Loader().load_bytes("f.yaml", text.encode(), NOW)
    return [(p.line, p.column, p.jsonpath, p.message) for p in result.problems]


def test_cron_and_every_together_are_one_problem_at_the_key_to_remove() -> None:
    text = 'name: a\nschedule:\n  cron: "0 2 * * *"\n  every: 1h\nrun: {command: [x]}\n'
    assert problems(text) == [(4, 3, "$.schedule.every", "'cron' and 'every' cannot be used together: choose one")]


def test_the_key_to_remove_is_the_later_in_the_schema_whatever_the_order_in_the_file() -> None:
    # The editor keeps cron, then every, then at: validate points where the editor does.
    text = 'name: a\nschedule:\n  every: 1h\n  cron: "0 2 * * *"\nrun: {command: [x]}\n'
    assert problems(text) == [(3, 3, "$.schedule.every", "'cron' and 'every' cannot be used together: choose one")]


def test_all_three_kinds_together_are_named_in_one_problem() -> None:
    text = 'name: a\nschedule:\n  at: "2030-01-01T00:00:00Z"\n  every: 1h\n  cron: "0 2 * * *"\nrun: {command: [x]}\n'
    assert problems(text) == [
        (4, 3, "$.schedule.every", "'cron', 'every' and 'at' cannot be used together: choose one"),
    ]


def test_a_schedule_with_none_of_the_four_names_them_at_its_key() -> None:
    text = "name: a\nschedule:\n  timezone: UTC\nrun: {command: [x]}\n"
    assert problems(text) == [(2, 1, "$.schedule", "one of 'cron', 'every', 'at' or 'after' is required")]


def test_command_and_http_together_are_one_problem_at_http() -> None:
    text = 'name: a\nschedule: {every: 1h}\nrun:\n  command: [x]\n  http: {url: "https://a.test/"}\n'
    assert problems(text) == [(5, 3, "$.run.http", "'command' and 'http' cannot be used together: choose one")]


def test_a_run_with_neither_command_nor_http_names_both() -> None:
    text = "name: a\nschedule: {every: 1h}\nrun:\n  timeout: 5m\n"
    assert problems(text) == [(3, 1, "$.run", "one of 'command' or 'http' is required")]


def test_a_name_of_64_characters_is_one_problem() -> None:
    text = f"name: {'a' * 64}\nschedule: {{every: 1h}}\nrun: {{command: [x]}}\n"
    [(line, col, path, message)] = problems(text)
    assert (line, col, path) == (1, 7, "$.name")
    assert "a name is 1-63 lowercase letters" in message


def test_a_label_key_of_64_characters_is_one_problem() -> None:
    text = f"name: a\nlabels: {{{'k' * 64}: v}}\nschedule: {{every: 1h}}\nrun: {{command: [x]}}\n"
    [(line, _, path, message)] = problems(text)
    assert (line, path) == (2, f"$.labels.{'k' * 64}")
    assert "a label key is 1-63 letters" in message


def test_a_duration_of_the_wrong_type_names_both_forms() -> None:
    text = "name: a\nschedule: {every: true}\nrun: {command: [x]}\n"
    assert problems(text) == [(2, 19, "$.schedule.every", "expected a string or an integer, got the boolean true")]


def test_an_env_value_of_the_wrong_type_names_both_forms() -> None:
    text = "name: a\nschedule: {every: 1h}\nrun: {command: [x], env: {A: [x]}}\n"
    assert problems(text) == [(3, 30, "$.run.env.A", "expected a string or a mapping, got a list")]


def test_an_env_value_with_an_unknown_key_names_the_two_forms() -> None:
    text = "name: a\nschedule: {every: 1h}\nrun: {command: [x], env: {A: {from_envv: X}}}\n"
    [(line, _, path, message)] = problems(text)
    assert (line, path) == (3, "$.run.env.A.from_envv")
    assert message == "unknown field 'from_envv' (did you mean 'from_env'?)"


def test_a_six_field_cron_is_one_problem_from_the_cron_rules() -> None:
    text = 'name: a\nschedule: {cron: "0 0 2 * * *"}\nrun: {command: [x]}\n'
    [(line, col, path, message)] = problems(text)
    assert (line, col, path) == (2, 18, "$.schedule.cron")
    assert message.startswith("6 fields given; cron has five")


def test_an_unknown_time_zone_is_one_problem_with_a_did_you_mean() -> None:
    text = "name: a\nschedule: {every: 1h, timezone: Europe/Berln}\nrun: {command: [x]}\n"
    assert problems(text) == [
        (2, 33, "$.schedule.timezone", "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
    ]


def test_an_empty_cron_is_one_problem_from_the_cron_rules() -> None:
    text = 'name: a\nschedule: {cron: ""}\nrun: {command: [x]}\n'
    assert problems(text) == [(2, 18, "$.schedule.cron", "empty cron expression: write five fields, e.g. '0 2 * * *'")]


def test_an_empty_time_zone_is_one_problem() -> None:
    text = 'name: a\nschedule: {every: 1h, timezone: ""}\nrun: {command: [x]}\n'
    [(line, col, path, message)] = problems(text)
    assert (line, col, path) == (2, 33, "$.schedule.timezone")
    assert message.startswith("unknown time zone ''")
