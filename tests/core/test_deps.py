"""Dependencies as set rules (reconciler.core.deps): known names, no cycles, no edge across shards."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.deps import cycles
from reconciler.core.loader import Loader


def job(name: str, when: str, extra: str = "") -> str:
    return f"name: {name}\nschedule: {when}\nrun: {{command: [x]}}\n{extra}"


def problems(tmp_path: Path, files: dict[str, str], **kw: object) -> list[tuple[str, int, str]]:
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    result = Loader().load_paths([tmp_path], **kw)  # type: ignore[arg-type]
    return [(Path(p.path).name, p.line, p.message) for p in result.problems if p.severity == "error"]


def test_a_cycle_is_reported_at_every_member_naming_every_file_and_line_of_it(tmp_path: Path) -> None:
    found = problems(tmp_path, {
        "a.yaml": job("a", "{after: [c]}"),
        "b.yaml": "# b\n" + job("b", "{after: [a]}"),
        "c.yaml": job("c", "{every: 1h}", "requires: [{schedule: b}]\n"),
    })
    where = (f"a ({tmp_path}/a.yaml:1) -> c ({tmp_path}/c.yaml:1) -> b ({tmp_path}/b.yaml:2) "
             f"-> a ({tmp_path}/a.yaml:1)")
    message = f"dependency cycle (each depends on the next): {where}"
    assert found == [("a.yaml", 1, message), ("b.yaml", 2, message), ("c.yaml", 1, message)]


def test_a_schedule_after_itself_is_a_cycle_but_requiring_its_own_history_is_not(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a.yaml": job("a", "{after: [a]}") + "---\n"
                                + job("b", "{every: 1h}", "requires: [{schedule: self}]\n")})
    assert [m for _, _, m in found] == [
        f"dependency cycle (each depends on the next): a ({tmp_path}/a.yaml:1) -> a ({tmp_path}/a.yaml:1)"]


def test_a_reference_to_an_unknown_schedule_is_an_error_at_the_schedule(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a.yaml": job("a", "{after: [extrct]}")})
    assert found == [("a.yaml", 1, "depends on 'extrct', which no schedule of the directory is named")]


def test_validate_without_records_still_checks_the_graph(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(job("a", "{after: [nope]}"))
    assert not Loader().load_paths([tmp_path], build_records=False).valid


def test_a_dependency_across_selector_shards_cannot_be_honoured(tmp_path: Path) -> None:
    files = {"a.yaml": job("a", "{every: 1h}", "labels: {shard: one}\n"),
             "b.yaml": job("b", "{after: [a]}", "labels: {shard: two}\n")}
    assert problems(tmp_path, files) == []
    found = problems(tmp_path, files, selector={"shard": "two"})
    assert found == [("b.yaml", 1, "depends on 'a', which --selector shard=two puts in another shard: "
                                   "the dependency cannot be honoured")]


def test_on_and_all_only_apply_to_after(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a.yaml": job("a", "{every: 1h, on: failure}")})
    assert found == [("a.yaml", 2, "on only applies to `after`")]


def test_cycles_are_found_in_a_chain_thousands_deep_without_recursion() -> None:
    edges = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    assert cycles(edges) == []
    edges["n5000"] = ["n0"]
    assert len(cycles(edges)[0]) == 5001


def test_an_unknown_requirement_is_reported_at_requires(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(job("a", "{every: 1h}", "requires: [{schedule: nope}]\n"))
    [p] = Loader().load_paths([tmp_path]).problems
    assert (p.pointer, p.message) == (("requires",), "depends on 'nope', which no schedule of the directory is named")
