"""The set rules (reconciler.core.setrules): one incremental object behind validate and the daemon."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.loader import FileResult, Loader, combine
from reconciler.core.setrules import SetRules
from reconciler.service.source import DirectorySource
from tests.conftest import NOW


def doc(name: str, every: str = "1h") -> str:
    return f"name: {name}\nschedule: {{every: {every}}}\nrun: {{command: [/bin/true]}}\n"


def load(path: str, *names: str, build: bool = True) -> FileResult:
    text = "---\n".join(doc(n, f"{i + 1}h") for i, n in enumerate(names))
    return Loader().load_bytes(path, text.encode(), NOW, build_records=build)


def messages(rules: SetRules[str]) -> list[tuple[str, int, str]]:
    return [(p.path, p.line, p.message) for p in rules.problems()]


def test_a_name_held_twice_is_reported_at_each_place_naming_the_other_and_neither_is_kept() -> None:
    rules: SetRules[str] = SetRules()
    rules.add("a.yaml", load("a.yaml", "x", "y"))
    rules.add("b.yaml", load("b.yaml", "x"))
    assert set(rules.unique) == set(rules.hashes) == {"y"}
    assert rules.names == ("y",)
    assert messages(rules) == [("a.yaml", 1, "name 'x' is used more than once (also at b.yaml:1)"),
                               ("b.yaml", 1, "name 'x' is used more than once (also at a.yaml:1)")]


def test_removing_one_holder_of_a_repeated_name_makes_the_other_live_and_adding_it_back_undoes_that() -> None:
    rules: SetRules[str] = SetRules()
    a, b = load("a.yaml", "x"), load("b.yaml", "x")
    rules.add("a.yaml", a)
    rules.add("b.yaml", b)
    rules.remove("a.yaml", a)
    assert messages(rules) == []
    assert rules.unique["x"] is b.schedules[0]
    assert rules.hashes["x"] == b.schedules[0].spec_hash
    rules.add("a.yaml", a)
    assert (rules.unique, rules.hashes, rules.names) == ({}, {}, ())
    assert len(messages(rules)) == 2


def test_names_that_were_not_built_follow_the_same_rule() -> None:
    rules: SetRules[int] = SetRules()
    first, second = load("a.yaml", "x", "y", build=False), load("b.yaml", "y", build=False)
    rules.add(0, first)
    rules.add(1, second)
    assert (rules.unique, rules.names) == ({}, ("x",))
    rules.remove(1, second)
    assert rules.names == ("x", "y")
    assert rules.problems() == []


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(4)))
def test_whatever_order_files_are_added_in_the_problems_list_them_in_file_order(order: list[int]) -> None:
    results = [load(f"{i}.yaml", "dup", f"own-{i}") for i in range(4)]
    in_order: SetRules[str] = SetRules()
    shuffled: SetRules[str] = SetRules()
    for i in range(4):
        in_order.add(f"{i}.yaml", results[i])
    for i in order:
        shuffled.add(f"{i}.yaml", results[i])
    assert messages(shuffled) == messages(in_order)
    assert set(shuffled.unique) == {f"own-{i}" for i in range(4)}


def test_combine_and_the_daemons_index_give_the_same_schedules_and_problems(tmp_path: Path) -> None:
    files = {"a.yaml": ("x", "y"), "b.yaml": ("y",), "c.yaml": ("z", "x"), "d/e.yaml": ("w",)}
    for rel, names in files.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text("---\n".join(doc(n) for n in names))
    loaded = Loader().load_paths([tmp_path], now=NOW)
    snap = DirectorySource(tmp_path).full(NOW)
    assert [s.name for s in loaded.schedules] == ["z", "w"]
    assert sorted(snap.schedules) == ["w", "z"]  # a persistent map: not in file order
    assert [p.format_text() for p in loaded.problems] == [p.format_text() for p in snap.problems]
    assert len(loaded.problems) == 4


def test_combine_keeps_the_order_files_were_named_in() -> None:
    later, earlier = load("z.yaml", "x", "only-z"), load("a.yaml", "x", "only-a")
    result = combine([later, earlier])
    assert [s.name for s in result.schedules] == ["only-z", "only-a"]
    assert [p.path for p in result.problems] == ["z.yaml", "a.yaml"]
    assert result.names == ("only-z", "only-a")


def test_replacing_one_files_result_changes_only_what_its_names_touch() -> None:
    rules: SetRules[str] = SetRules()
    results = {f"{i}.yaml": load(f"{i}.yaml", f"n{i}") for i in range(50)}
    for rel, r in results.items():
        rules.add(rel, r)
    rules.remove("7.yaml", results["7.yaml"])
    rules.add("7.yaml", load("7.yaml", "n7", "n8"))
    assert set(rules.unique) == {f"n{i}" for i in range(50)} - {"n8"}
    assert [(p.path, p.line) for p in rules.problems()] == [("7.yaml", 5), ("8.yaml", 1)]
    assert rules.names[:3] == ("n0", "n1", "n2")
