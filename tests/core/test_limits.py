"""`run.limits`: sizes, the loader's messages, and the policy's word on which limit ended a run."""

from __future__ import annotations

import pytest

from reconciler.core.limits import Limits, SizeError, format_size, parse_size
from reconciler.core.loader import Loader
from reconciler.core.policy import FailReason, limit_reason
from reconciler.kinds.command.spec import CommandRun
from tests.conftest import NOW

DOC = 'name: job\nschedule: {every: 1h}\nrun: {command: [/bin/true], limits: %s}\n'


def load(limits: str) -> tuple[list[CommandRun], list[tuple[int, int, str]]]:
    result = Loader().load_bytes("f.yaml", (DOC % limits).encode(), NOW)
    return ([s.run for s in result.schedules if isinstance(s.run, CommandRun)],
            [(p.line, p.column, p.message) for p in result.problems])


@pytest.mark.parametrize(("text", "n"), [("512Mi", 512 << 20), ("2Gi", 2 << 30), ("100M", 100_000_000),
                                         ("64Ki", 65536), (4096, 4096)])
def test_sizes_are_read_as_kubernetes_spells_them(text: str | int, n: int) -> None:
    assert parse_size(text) == n


def test_a_size_without_a_known_unit_says_how_to_write_one() -> None:
    with pytest.raises(SizeError, match="write it as 512Mi"):
        parse_size("512MB")
    assert format_size(512 << 20) == "512Mi"


def test_every_limit_is_built_onto_the_command() -> None:
    (run,), found = load("{memory: 512Mi, cpu_time: 10m, open_files: 4096, processes: 256}")
    assert found == []
    assert run.limits == Limits(memory=512 << 20, cpu_time=600, open_files=4096, processes=256)


@pytest.mark.parametrize(("limits", "message"), [
    ("{memory: 512MB}", "a size such as 512Mi, 2Gi or 100M"),
    ("{memory: 512}", "memory 512B is too small for any program to start; at least 16Mi (did you mean 512Mi?)"),
    ("{cpu_time: 500ms}", "cpu_time is counted in whole seconds: at least 1s"),
    ("{open_files: 3}", "3 is less than the minimum of 16"),
    ("{memroy: 1Gi}", "memroy"),
    ("{}", "should be non-empty"),
])
def test_a_limit_mistake_is_named_at_its_line_with_what_to_write(limits: str, message: str) -> None:
    runs, found = load(limits)
    assert runs == []
    assert any(line == 3 and message in m for line, _, m in found), found


def test_limits_apply_to_commands_only() -> None:
    result = Loader().load_bytes("f.yaml", b"name: job\nschedule: {every: 1h}\n"
                                 b"run: {http: {url: 'https://x.test/'}, limits: {memory: 1Gi}}\n", NOW)
    assert any("commands only" in p.message for p in result.problems), result.problems


def reason(code: int, *, memory: bool = False, cpu: int | None = None, ooms: int = 0,
           used: float | None = None, output: str = "") -> FailReason | None:
    return limit_reason(exit_code=code, memory_limit=memory, cpu_limit=cpu, oom_kills=ooms, cpu_used=used,
                        output=output)


def test_the_cgroups_oom_kill_is_a_memory_failure_whatever_the_exit() -> None:
    assert reason(-9, memory=True, ooms=1) == FailReason.MEMORY
    assert reason(137, memory=True, ooms=2) == FailReason.MEMORY


def test_an_allocation_refused_under_a_memory_limit_is_a_memory_failure() -> None:
    assert reason(1, memory=True, output="Traceback...\nMemoryError\n") == FailReason.MEMORY
    assert reason(1, memory=False, output="MemoryError\n") is None  # no limit of ours refused it


def test_sigxcpu_or_sigkill_past_the_cpu_limit_is_a_cpu_time_failure() -> None:
    assert reason(-24, cpu=10, used=10.0) == FailReason.CPU_TIME
    assert reason(-9, cpu=10, used=15.1) == FailReason.CPU_TIME
    assert reason(-9, cpu=10, used=2.0) is None  # killed by someone else, long before its limit


def test_a_run_that_succeeded_or_failed_plainly_has_no_limit_reason() -> None:
    assert reason(0, memory=True, ooms=1) is None
    assert reason(3, memory=True, cpu=10, used=1.0, output="no such file") is None
