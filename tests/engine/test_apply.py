"""apply_plan on a real Timer: jobs added in bulk fire through the executor, suspended ones wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.core.plan import SpecsOf, plan
from reconciler.engine.apply import apply_plan
from reconciler.engine.timer import Timer


def schedule(name: str, **fields: Any) -> Schedule:
    spec = {"name": name, "schedule": {"every": "1s"}, "run": {"command": ["true"]}, **fields}
    built = build_from_spec(spec, "test", Loader())
    assert built is not None
    return built


@pytest.fixture
def fired() -> Iterator[tuple[Timer, list[tuple[str, datetime]], threading.Event]]:
    seen: list[tuple[str, datetime]] = []
    event = threading.Event()

    def dispatch(name: str, slot: datetime, fire_time: datetime) -> None:
        seen.append((name, slot))
        event.set()

    timer = Timer(dispatch)
    timer.start(paused=True)
    yield timer, seen, event
    timer.shutdown(wait=False)


def apply(timer: Timer, desired: dict[str, Schedule], applied: dict[str, Schedule]) -> None:
    p = plan(SpecsOf(desired), SpecsOf(applied), desired_hashes={n: s.spec_hash for n, s in desired.items()},
             applied_hashes={n: s.spec_hash for n, s in applied.items()})
    apply_plan(timer, p, desired, datetime.now(UTC))


def test_jobs_added_in_bulk_fire_through_the_executor_and_suspended_ones_never_do(fired: Any) -> None:
    timer, seen, event = fired
    desired = {"live": schedule("live"), "held": schedule("held", enabled=False)}
    apply(timer, desired, {})
    fires = timer.next_fire_times()
    assert set(fires) == {"live", "held"}
    assert fires["held"] is None
    live = fires["live"]
    assert live is not None
    assert live - datetime.now(UTC) <= timedelta(seconds=1)
    timer.resume()
    assert event.wait(3)
    assert {name for name, _ in seen} == {"live"}
    assert all(slot.microsecond == 0 for _, slot in seen)  # fired at whole-second slots


def test_a_completed_one_time_schedule_is_not_added(fired: Any) -> None:
    timer, _, _ = fired
    past = schedule("once", schedule={"at": "2020-01-01T00:00:00Z"})
    apply(timer, {"once": past}, {})
    assert timer.next_fire_times() == {}


def test_a_change_that_moves_fire_times_replaces_the_job_and_a_removal_drops_it(fired: Any) -> None:
    timer, _, _ = fired
    old = {"a": schedule("a"), "b": schedule("b")}
    apply(timer, old, {})
    new = {"a": schedule("a", schedule={"cron": "0 2 * * *"})}
    apply(timer, new, old)
    ((name, fire),) = timer.next_fire_times().items()
    assert name == "a"
    assert fire is not None
    assert (fire.hour, fire.minute) == (2, 0)


def test_adding_to_a_timer_that_was_never_started_is_refused() -> None:
    timer = Timer(lambda *_: None)
    with pytest.raises(RuntimeError, match="start the timer"):
        apply(timer, {"a": schedule("a")}, {})


def test_putting_a_job_whose_name_is_already_in_the_timer_replaces_it(fired: Any) -> None:
    timer, _, _ = fired
    apply(timer, {"a": schedule("a")}, {})
    # As if an earlier apply had stopped half-way: the timer holds `a`, the plan adds it again.
    apply(timer, {"a": schedule("a", schedule={"cron": "0 2 * * *"})}, {})
    ((name, fire),) = timer.next_fire_times().items()
    assert name == "a"
    assert fire is not None
    assert (fire.hour, fire.minute) == (2, 0)
