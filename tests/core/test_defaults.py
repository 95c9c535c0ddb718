"""Directory defaults (reconciler.core.defaults): `_defaults.yaml` below which schedules inherit."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.defaults import DefaultsChecker, chain_for, defaults_schema_text, effective_lines, merge, origins
from reconciler.core.loader import Loader

CHECKER = DefaultsChecker()


def defaults(path: str, text: str) -> object:
    found, problems = CHECKER.check(path, path.rpartition("/")[0] + "/" if "/" in path else "", text.encode())
    assert problems == [], problems
    return found


def test_the_nearest_defaults_win_field_by_field_maps_merge_lists_replace_and_the_schedules_own_value_wins() -> None:
    top = defaults("_defaults.yaml", "labels: {team: data, tier: '2'}\nnotify: [{url: https://a.test/}]\n"
                                     "policy: {retries: {limit: 1, backoff: 5s}}\n")
    near = defaults("etl/_defaults.yaml", "labels: {tier: '1'}\nnotify: [{url: https://b.test/}]\n"
                                          "policy: {retries: {limit: 3}}\n")
    chain = chain_for("etl/x/job.yaml", {"": top, "etl/": near})  # type: ignore[dict-item]
    assert [d.path for d in chain] == ["etl/_defaults.yaml", "_defaults.yaml"]
    own = {"name": "j", "labels": {"owner": "ann"}, "policy": {"retries": {"backoff": "1s"}}}
    spec = merge(own, chain)
    assert spec["labels"] == {"owner": "ann", "tier": "1", "team": "data"}
    assert spec["notify"] == [{"url": "https://b.test/"}]  # replaced whole, never concatenated
    assert spec["policy"] == {"retries": {"backoff": "1s", "limit": 3}}
    assert own == {"name": "j", "labels": {"owner": "ann"}, "policy": {"retries": {"backoff": "1s"}}}  # untouched


def test_every_inherited_value_names_the_file_and_line_it_came_from() -> None:
    top = defaults("_defaults.yaml", "labels:\n  team: data\nschedule:\n  timezone: Europe/Berlin\n")
    own = {"name": "j", "labels": {"team": "mine"}, "schedule": {"every": "1h"}}
    found = origins(own, (top,))  # type: ignore[arg-type]
    assert found == {("schedule", "timezone"): "_defaults.yaml:4"}
    assert own == {"name": "j", "labels": {"team": "mine"}, "schedule": {"every": "1h"}}  # untouched
    lines = effective_lines({"name": "j", "schedule": {"every": "1h"}}, (top,), "j.yaml:1")  # type: ignore[arg-type]
    assert 'schedule.timezone: "Europe/Berlin"  # _defaults.yaml:4' in lines
    assert 'name: "j"  # j.yaml:1' in lines


def test_a_defaults_file_has_its_own_schema_and_its_errors_name_file_line_and_field() -> None:
    found, problems = CHECKER.check("d/_defaults.yaml", "d/", b"labels: {a: b}\nname: x\nrun: {command: [x]}\n")
    assert found is None
    assert [(p.path, p.line, p.pointer) for p in problems] == [("d/_defaults.yaml", 2, ("name",)),
                                                                 ("d/_defaults.yaml", 3, ("run", "command"))]
    assert "unknown field 'name'" in problems[0].message


def test_run_defaults_apply_to_commands_and_leave_http_requests_alone() -> None:
    d = defaults("_defaults.yaml", "run: {env: {A: b}, timeout: 5m}\n")
    assert merge({"run": {"command": ["x"]}}, (d,))["run"] == {"command": ["x"], "env": {"A": "b"}, "timeout": "5m"}  # type: ignore[arg-type]
    assert merge({"run": {"http": {"url": "https://a.test/"}}}, (d,))["run"] == {"http": {"url": "https://a.test/"}}  # type: ignore[arg-type]


def test_validate_applies_the_defaults_below_their_directory_and_their_zone_moves_the_cron(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "_defaults.yaml").write_text("schedule: {timezone: Europe/Berlin}\nlabels: {team: all}\n")
    (tmp_path / "team" / "_defaults.yaml").write_text("labels: {team: data}\n")
    (tmp_path / "team" / "a.yaml").write_text('name: a\nschedule: {cron: "0 2 * * *"}\nrun: {command: [x]}\n')
    (tmp_path / "b.yaml").write_text('name: b\nschedule: {cron: "0 2 * * *", timezone: UTC}\nrun: {command: [x]}\n')
    result = Loader().load_paths([tmp_path])
    assert result.valid, result.problems
    by = {s.name: s for s in result.schedules}
    assert by["a"].timing.tz.key == "Europe/Berlin"
    assert by["a"].labels_dict == {"team": "data"}
    assert by["b"].timing.tz.key == "UTC"
    assert by["b"].labels_dict == {"team": "all"}


def test_the_published_defaults_schema_is_the_one_derived_from_the_schedule_schema() -> None:
    shipped = Path(__file__).parents[2] / "schema" / "defaults.schema.json"
    # Stale? Run: .venv/bin/reconciler schema --defaults --output schema/defaults.schema.json
    assert shipped.read_text() == defaults_schema_text()


def test_the_defaults_example_is_valid_and_its_schedule_inherits_from_both_files() -> None:
    root = Path(__file__).parents[2] / "examples" / "defaults"
    result = Loader().load_paths([root])
    assert result.problems == ()
    [s] = result.schedules
    assert s.labels_dict == {"org": "acme", "team": "data", "tier": "1"}
    assert s.timing.tz.key == "Europe/Berlin"
    assert s.policy.retries.limit == 2
