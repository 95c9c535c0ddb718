"""The pure plan: every kind of change, compared by fingerprints of canonical specs."""

from __future__ import annotations

from typing import Any

from reconciler.core.plan import Action, FieldChange, moves_fire_times, plan


def spec(name: str, cron: str = "0 2 * * *", **extra: Any) -> dict[str, Any]:
    return {"name": name, "schedule": {"cron": cron}, "run": {"command": ["/bin/true"]}, **extra}


def test_identical_specs_plan_nothing() -> None:
    p = plan({"a": spec("a")}, {"a": spec("a")})
    assert p.empty
    assert p.unchanged == {"a"}
    assert p.summary() == "0 to add, 0 to change, 0 to remove, 1 unchanged"


def test_a_new_name_is_an_addition_and_a_missing_one_a_removal() -> None:
    p = plan({"a": spec("a"), "b": spec("b")}, {"a": spec("a"), "c": spec("c")})
    assert [(c.action, c.name) for c in p.changes()] == [(Action.REMOVE, "c"), (Action.ADD, "b")]
    assert p.counts() == {"add": 1, "change": 1 - 1, "remove": 1, "unchanged": 1}


def test_a_rename_is_a_removal_plus_an_addition() -> None:
    p = plan({"new": spec("new")}, {"old": spec("old")})
    assert [(c.action, c.name) for c in p.changes()] == [(Action.REMOVE, "old"), (Action.ADD, "new")]


def test_a_change_lists_each_field_old_and_new() -> None:
    old = spec("a", run={"command": ["/bin/a", "x"], "timeout": "5m"})
    new = spec("a", cron="0 3 * * *", run={"command": ["/bin/a", "y"]}, policy={"catchup": "latest"})
    (c,) = plan({"a": new}, {"a": old}).changed
    assert c.fields == (
        FieldChange("policy", None, {"catchup": "latest"}, old_present=False),
        FieldChange("run.command", ["/bin/a", "x"], ["/bin/a", "y"]),
        FieldChange("run.timeout", "5m", None, new_present=False),
        FieldChange("schedule.cron", "0 2 * * *", "0 3 * * *"),
    )
    assert not c.metadata_only
    assert moves_fire_times(c)


def test_metadata_only_changes_are_changes_that_do_not_move_fire_times() -> None:
    (c,) = plan({"a": spec("a", description="new", labels={"team": "x"})}, {"a": spec("a")}).changed
    assert c.metadata_only
    assert not moves_fire_times(c)


def test_suspending_is_a_change_that_moves_fire_times() -> None:
    (c,) = plan({"a": spec("a", enabled=False)}, {"a": spec("a")}).changed
    assert c.fields == (FieldChange("enabled", None, False, old_present=False),)
    assert moves_fire_times(c)


def test_writing_a_default_explicitly_changes_the_spec_but_not_behaviour_of_enabled() -> None:
    (c,) = plan({"a": spec("a", enabled=True)}, {"a": spec("a")}).changed
    assert not moves_fire_times(c)


def test_a_type_change_is_a_change_even_when_values_compare_equal() -> None:
    (c,) = plan({"a": spec("a", history={"keep": 1.0})}, {"a": spec("a", history={"keep": 1})}).changed
    assert c.fields == (FieldChange("history.keep", 1, 1.0),)


def test_removing_everything_is_planned_as_removals_the_service_decides_whether_to_apply() -> None:
    p = plan({}, {"a": spec("a"), "b": spec("b")})
    assert [c.name for c in p.removed] == ["a", "b"]
    assert not p.added


class _Unread(dict[str, Any]):
    """Specs that may be named but must not be read (each read unpacks a stored spec)."""

    def __getitem__(self, name: str) -> Any:
        raise AssertionError(f"read the spec of {name}")


def test_a_plan_of_additions_and_removals_reads_no_spec_only_their_names() -> None:
    added = _Unread({f"new-{i}": {} for i in range(3)})
    gone = _Unread({"old": {}})
    p = plan(added, gone, desired_hashes={n: "h" for n in added}, applied_hashes={"old": "h0"})
    assert [(c.action, c.name) for c in p.added] == [(Action.ADD, f"new-{i}") for i in range(3)]
    assert [(c.action, c.name) for c in p.removed] == [(Action.REMOVE, "old")]
    assert p.counts() == {"add": 3, "change": 0, "remove": 1, "unchanged": 0}
