"""The fast validators (the daemon's fastjsonschema, validate's jsonschema-rs) and jsonschema agree on odd numbers."""

from __future__ import annotations

import pytest

from reconciler.core.schema import SchemaValidator

BASE = {"name": "a", "schedule": {"every": "1m"}, "run": {"command": ["x"]}}


@pytest.mark.parametrize("value", [16, 2**63, 2**64, 10**30, -(10**30), 10**4000, 1e400, float("-inf"), 20.0, True],
                         ids=lambda v: repr(v)[:12])
def test_every_fast_validator_judges_integers_beyond_64_bits_and_infinities_as_jsonschema_does(value: object) -> None:
    docs = [{**BASE, "run": {"command": ["x"], "limits": {"open_files": value}}},
            {**BASE, "policy": {"max_runs": value}},
            {**BASE, "run": {"http": {"url": "https://a.test", "json": {"n": value}}}}]
    engines = [SchemaValidator(fast="fastjsonschema"), SchemaValidator(fast="jsonschema-rs")]
    for doc in docs:
        assert [e.is_valid(doc) for e in engines] == [engines[0]._full.is_valid(doc)] * 2, doc


def test_validate_checks_with_jsonschema_rs_and_the_daemons_loader_with_fastjsonschema() -> None:
    from reconciler.commands.validate import _loader
    from reconciler.core.loader import Loader

    assert (_loader(False).validator.fast, Loader().validator.fast) == ("jsonschema-rs", "fastjsonschema")
