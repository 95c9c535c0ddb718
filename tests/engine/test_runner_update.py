"""What the runner learns at each revision costs O(what changed): the downstream map (who runs
`after` whom) comes from the dependency graph, not from a walk over every schedule."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from reconciler.core.deps import DepRef, followers
from reconciler.core.model import Schedule, Source
from reconciler.engine.runner import Runner
from reconciler.ledger import open_ledger


class Untouchable(Mapping[str, Schedule]):
    """A live map whose names may be asked about, but that is never walked whole."""

    def __init__(self, names: set[str]) -> None:
        self._names = names

    def __getitem__(self, name: str) -> Schedule:
        raise AssertionError(f"the runner read {name}'s record to learn the revision")

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the runner walked every schedule")

    def __len__(self) -> int:
        return len(self._names)


def ref(name: str, after: tuple[str, ...] = (), requires: tuple[str, ...] = ()) -> DepRef:
    return DepRef(name, Source("x.yaml", 1, 0), (*after, *requires), (), after)


def test_followers_are_the_live_schedules_that_run_after_each_upstream_sorted() -> None:
    graph = {"load": ref("load", after=("transform",)), "b": ref("b", after=("extract",)),
             "a": ref("a", after=("extract",)), "gated": ref("gated", requires=("extract",)),
             "elsewhere": ref("elsewhere", after=("extract",))}
    live = {"load", "a", "b", "gated", "extract", "transform"}
    assert followers(graph, live) == {"extract": ("a", "b"), "transform": ("load",)}


def test_the_runner_takes_the_followers_it_is_given_without_walking_every_schedule(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    try:
        runner = Runner(ledger, log=lambda *a, **k: None, environ={"PATH": "/usr/bin:/bin"})
        runner.update(Untouchable({"extract", "load"}), "rev-1", followers={"extract": ("load",)})
        assert runner.followers("extract") == ("load",)
        assert runner.followers("load") == ()
    finally:
        ledger.close()
