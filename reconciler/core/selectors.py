"""Label selectors (`--selector team=data`, the API's bulk actions): how they are written and
what they choose. One definition for the daemon's shard, `validate`, `pause` and the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class SelectorError(ValueError):
    """A selector item that is not `key=value`."""


def parse_selector(items: Iterable[str]) -> dict[str, str]:
    """`key=value` items, every pair required; the error names the item as `--selector ITEM`."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SelectorError(f"--selector {item!r}: write key=value")
        out[key] = value
    return out


def parse_selector_text(text: str) -> dict[str, str]:
    """`key=value[,key=value…]` in one string (the API's bulk actions); spaces around keys and
    values are ignored."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SelectorError(f"selector {text!r}: write key=value, several separated by commas")
        out[key.strip()] = value.strip()
    return out


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Every pair of the selector is one of the labels (an empty selector selects everything)."""
    return all(labels.get(k) == v for k, v in selector.items())
