"""Label selectors: one way to write them and one meaning, for every command and the API."""

from __future__ import annotations

import pytest

from reconciler.core.selectors import SelectorError, parse_selector, parse_selector_text, selects


def test_a_selector_is_key_value_pairs_and_a_value_may_be_empty_or_hold_an_equals_sign() -> None:
    assert parse_selector(["team=data", "tier=", "expr=a=b"]) == {"team": "data", "tier": "", "expr": "a=b"}


@pytest.mark.parametrize("item", ["team", "=data", ""])
def test_an_item_without_a_key_and_an_equals_sign_names_itself_in_the_error(item: str) -> None:
    with pytest.raises(SelectorError, match=f"--selector {item!r}: write key=value"):
        parse_selector([item])


def test_the_apis_selector_is_one_string_of_pairs_separated_by_commas() -> None:
    assert parse_selector_text(" team = data , tier=gold") == {"team": "data", "tier": "gold"}
    with pytest.raises(SelectorError, match="several separated by commas"):
        parse_selector_text("team=data,oops")


def test_a_selector_chooses_schedules_holding_every_pair() -> None:
    assert selects({"team": "data"}, {"team": "data", "tier": "gold"})
    assert not selects({"team": "data", "tier": "silver"}, {"team": "data", "tier": "gold"})
    assert not selects({"team": "data"}, {})
    assert selects({}, {"team": "web"})
