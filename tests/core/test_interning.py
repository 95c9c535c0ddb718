"""Equal small records are kept once across the fleet (issue 16: memory per schedule)."""

from __future__ import annotations

from datetime import timedelta

from reconciler.core import interning
from reconciler.core.interning import interned, interned_pairs
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from tests.conftest import NOW

TEXT = """\
name: NAME
labels: {team: data, tier: "1"}
schedule: {every: 5m}
run: {command: [/opt/job, --shard, "3"], timeout: 10m, env: {MODE: full, TOKEN: {from_env: T}}}
"""

HTTP = """\
name: NAME
schedule: {every: 5m}
run: {http: {url: "https://example.test/", method: POST, json: JSON}}
"""


def one(text: str, name: str) -> Schedule:
    (s,) = Loader().load_bytes(f"{name}.yaml", text.replace("NAME", name).encode(), NOW).schedules
    return s


def test_two_schedules_with_equal_labels_command_and_environment_share_one_object_of_each() -> None:
    a, b = one(TEXT, "a"), one(TEXT, "b")
    assert a.labels is b.labels
    assert a.run is b.run
    assert a.run.env is b.run.env  # type: ignore[attr-defined]
    assert a.timing.jitter is b.timing.jitter
    assert a.name != b.name
    assert a.timing is not b.timing


def test_a_different_command_keeps_its_own_record_but_shares_the_equal_environment() -> None:
    a, b = one(TEXT, "a"), one(TEXT.replace('"3"', '"4"'), "b")
    assert a.run is not b.run
    assert a.run.argv != b.run.argv  # type: ignore[attr-defined]
    assert a.run.env is b.run.env  # type: ignore[attr-defined]


def test_an_http_body_of_1_is_never_replaced_by_an_equal_body_of_true() -> None:
    one(HTTP.replace("JSON", "true"), "a")
    b = one(HTTP.replace("JSON", "1"), "b")
    body = b.run.json_body  # type: ignore[attr-defined]
    assert body == 1
    assert body is not True
    assert b.spec["run"]["http"]["json"] == 1


def test_a_value_is_shared_only_with_one_of_the_same_type() -> None:
    assert type(interned(1)) is int
    assert interned(True) is True
    assert type(interned(1.0)) is float


def test_equal_pairs_come_back_as_the_first_object_and_unequal_ones_as_themselves() -> None:
    first = interned_pairs((("team", "data"), ("tier", "1")))
    second = interned_pairs((("team", "da" + "ta"), ("tier", "1")))
    assert second is first
    other = interned_pairs((("team", "web"),))
    assert other == (("team", "web"),)
    assert other is not first
    assert interned_pairs(()) == ()


def test_the_table_starts_again_past_its_bound_and_keeps_answering_with_equal_values(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(interning, "MAX_ENTRIES", 4)
    monkeypatch.setattr(interning, "_table", {})
    values = [timedelta(seconds=i) for i in range(10)]
    for v in values:
        assert interned(v) is v
    assert len(interning._table) <= 4
    assert interned(timedelta(seconds=9)) is values[9]
