"""A schedule record keeps its spec packed (issue 16: memory per schedule), and reads as before."""

from __future__ import annotations

import dataclasses
import gc

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from tests.conftest import NOW

TEXT = """\
name: nightly
description: every night
labels: {team: data}
schedule: {cron: "0 2 * * *", timezone: Europe/Berlin}
run: {command: [/bin/true], env: {MODE: full}}
"""

RULED = TEXT.replace("name: nightly", "name: ruled") + "windows: [{kind: allow, cron: '0 1 * * *', duration: 1h}]\n"


def one(text: str) -> Schedule:
    result = Loader().load_bytes("s.yaml", text.encode(), NOW)
    (s,) = result.schedules
    return s


def test_a_record_holds_no_parsed_spec_dict_only_bytes() -> None:
    s = one(TEXT)
    assert not [r for r in gc.get_referents(s) if isinstance(r, dict)]
    assert isinstance(s.packed_spec, bytes)


def test_the_spec_reads_as_the_document_was_written() -> None:
    assert one(TEXT).spec == {
        "name": "nightly", "description": "every night", "labels": {"team": "data"},
        "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
        "run": {"command": ["/bin/true"], "env": {"MODE": "full"}},
    }


def test_changing_a_read_spec_does_not_change_the_record() -> None:
    s = one(TEXT)
    spec = s.spec
    spec["run"]["command"].append("--oops")
    spec["name"] = "other"
    assert s.spec["run"]["command"] == ["/bin/true"]
    assert s.spec["name"] == "nightly"


def test_two_records_of_the_same_document_are_equal_and_a_rebuilt_one_too() -> None:
    a, b = one(TEXT), one(TEXT)
    assert a == b
    assert dataclasses.replace(a, description=a.description) == a
    assert a != one(TEXT.replace("0 2", "0 3"))


def test_a_record_knows_whether_it_names_shared_windows_or_a_calendar() -> None:
    assert one(TEXT).shared is False
    ruled = Loader().load_bytes("s.yaml", RULED.encode(), NOW)
    assert [s.shared for s in ruled.schedules] == [True]
