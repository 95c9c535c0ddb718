"""The timer façade over APScheduler: what the service may ask of it, and the private APScheduler
members it relies on (listed once, in engine/timer.py)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from apscheduler.job import Job

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.engine.executor import SlotExecutor
from reconciler.engine.timer import PRIVATE_MEMBERS, VERIFIED_WITH, Timer, slot_job
from reconciler.engine.trigger import SlotTrigger
from tests.harness import wait_for


def schedule(name: str, every: str = "1s") -> Schedule:
    built = build_from_spec({"name": name, "schedule": {"every": every}, "run": {"command": ["true"]}}, "test",
                            Loader())
    assert built is not None
    return built


def job_of(timer: Timer, s: Schedule, paused: bool = False) -> Job:
    trigger = SlotTrigger(s.timing)
    return slot_job(timer, s.name, trigger, None if paused else trigger.get_next_fire_time(None, datetime.now(UTC)))


@pytest.fixture
def timer() -> Iterator[Timer]:
    t = Timer(lambda *_: None)
    t.start(paused=True)
    yield t
    if t.alive():
        t.shutdown(wait=False)


def test_every_private_apscheduler_member_we_rely_on_is_still_there(timer: Timer) -> None:
    job = job_of(timer, schedule("a"))
    instances = [timer._scheduler, timer._store, job, SlotExecutor(lambda *_: None)]
    missing = []
    for where, member, why in PRIVATE_MEMBERS:
        module, _, name = where.partition(":")
        cls = getattr(importlib.import_module(module), name)
        holders = [cls, *(o for o in instances if isinstance(o, cls))]
        if not any(hasattr(o, member) for o in holders):
            missing.append(f"{where}.{member} (used by {why})")
    assert not missing, (f"APScheduler {version('apscheduler')} lacks private members the timer relies on "
                         f"(verified with {', '.join(VERIFIED_WITH)}): {'; '.join(missing)}")


def test_a_job_is_built_in_the_state_format_apscheduler_stores_it_in(timer: Timer) -> None:
    state = job_of(timer, schedule("a")).__getstate__()
    # Job.__setstate__ of another format version would reject or misread what slot_job hands it.
    assert state["version"] == 1
    assert set(state) == {"version", "id", "name", "func", "args", "kwargs", "trigger", "executor",
                          "misfire_grace_time", "coalesce", "max_instances", "next_run_time"}


def test_the_verified_releases_include_the_lower_bound_in_requirements() -> None:
    lowest = Path(__file__).resolve().parents[2] / "requirements" / "lowest.txt"
    (pinned,) = [line.split("==")[1] for line in lowest.read_text().splitlines() if line.startswith("apscheduler==")]
    assert pinned in VERIFIED_WITH


def test_the_timer_is_alive_only_while_its_thread_runs() -> None:
    t = Timer(lambda *_: None)
    assert not t.alive()
    t.start(paused=True)
    assert t.alive()
    t.shutdown(wait=True)
    assert not t.alive()


def test_next_fire_times_list_every_job_and_none_for_a_suspended_one(timer: Timer) -> None:
    timer.put([job_of(timer, schedule("live")), job_of(timer, schedule("held"), paused=True)])
    fires = timer.next_fire_times()
    assert set(fires) == {"live", "held"}
    assert fires["held"] is None
    assert fires["live"] is not None


def test_next_fire_times_move_on_as_the_timer_fires() -> None:
    fired = threading.Event()
    t = Timer(lambda *_: fired.set())
    t.start(paused=True)
    try:
        t.put([job_of(t, schedule("tick"))])
        first = t.next_fire_times()["tick"]
        assert first is not None
        t.resume()
        assert fired.wait(3)
        later = wait_for(lambda: (t.next_fire_times()["tick"] or first) > first, timeout=3, what="the next fire")
        assert later
        assert t.next_fire_times()["tick"] == first + timedelta(seconds=1)
    finally:
        t.shutdown(wait=False)


def test_removing_a_job_says_whether_the_timer_held_it(timer: Timer) -> None:
    timer.put([job_of(timer, schedule("a")), job_of(timer, schedule("b"))])
    assert timer.remove("a") is True
    assert timer.remove("a") is False
    assert set(timer.next_fire_times()) == {"b"}
    timer.clear()
    assert timer.next_fire_times() == {}


def test_every_job_shares_one_empty_kwargs_dict(timer: Timer) -> None:
    a, b = job_of(timer, schedule("a")), job_of(timer, schedule("b"))
    assert a.kwargs == {}
    assert a.kwargs is b.kwargs
