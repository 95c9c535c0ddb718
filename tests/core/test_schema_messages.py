"""Schema errors as people read them: every missing and every unknown field named once, each."""

from __future__ import annotations

from reconciler.core.loader import Loader
from tests.conftest import NOW


def problems(text: str) -> list[tuple[int, int, str, str]]:
    result = Loader().load_bytes("f.yaml", text.encode(), NOW)
    return [(p.line, p.column, p.jsonpath, p.message) for p in result.problems]


def test_a_file_of_one_unknown_key_names_each_missing_field_once_and_the_unknown_key() -> None:
    expected = ("; expected one of: calendar, description, enabled, history, labels, name, notify, policy, requires, "
                "run, schedule, windows")
    assert problems("foo: 1\n") == [
        (1, 1, "$", "required field 'name' is missing"),
        (1, 1, "$", "required field 'schedule' is missing"),
        (1, 1, "$", "required field 'run' is missing"),
        (1, 1, "$.foo", "unknown field 'foo'" + expected),
    ]


def test_a_name_alone_names_schedule_and_run_once_each() -> None:
    assert problems("name: a\n") == [
        (1, 1, "$", "required field 'schedule' is missing"),
        (1, 1, "$", "required field 'run' is missing"),
    ]


def test_every_unknown_key_is_named_at_its_own_line_with_its_own_hint() -> None:
    text = 'name: a\nschedule: {cron: "0 2 * * *"}\nrun: {command: [x]}\nlabel: {a: b}\ndescripton: x\n'
    assert problems(text) == [
        (4, 1, "$.label", "unknown field 'label' (did you mean 'labels'?)"),
        (5, 1, "$.descripton", "unknown field 'descripton' (did you mean 'description'?)"),
    ]


def test_unknown_keys_inside_a_block_are_each_named_once() -> None:
    text = 'name: a\nschedule:\n  cron: "0 2 * * *"\n  timzone: UTC\n  jiter: 5s\nrun: {command: [x]}\n'
    assert problems(text) == [
        (4, 3, "$.schedule.timzone", "unknown field 'timzone' (did you mean 'timezone'?)"),
        (5, 3, "$.schedule.jiter", "unknown field 'jiter' (did you mean 'jitter'?)"),
    ]
