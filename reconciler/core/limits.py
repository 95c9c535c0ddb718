"""Resource limits of a run (`run: {limits: {memory, cpu_time, open_files, processes}}`) and the
usage a run is recorded with. Pure: the command kind's spec face builds them, its run face
enforces them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from reconciler.core.durations import parse_duration

_SIZE = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_UNITS = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
MIN_MEMORY = 16 * 2**20  # below this not even a shell starts: a limit lower is a mistake


class SizeError(ValueError):
    pass


def whole(value: Any) -> Any:
    """An integer field as an int: JSON Schema's `integer` includes 5.0, which validate accepts, and
    setrlimit, SQL and range() do not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_size(value: Any) -> int:
    """Bytes from 512Mi, 2Gi, 100M or a bare number of bytes (Kubernetes' spelling)."""
    if isinstance(value, bool):
        raise SizeError("a size such as 512Mi, 2Gi or 100M")
    if isinstance(value, float) and value.is_integer():  # the schema's `integer` includes 5.0
        value = int(value)
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value).strip())
    if m is None:
        raise SizeError(f"{value!r} is not a size: write it as 512Mi, 2Gi or 100M (Ki, Mi, Gi are powers of 1024)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_size(n: int) -> str:
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return f"{n}B" if n < 2**10 else f"{n / 2**20:.1f}Mi"


@dataclass(frozen=True, slots=True)
class Limits:
    memory: int | None = None  # bytes
    cpu_time: int | None = None  # whole seconds of CPU (user + system)
    open_files: int | None = None
    processes: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.memory, self.cpu_time, self.open_files, self.processes))


def build_limits(raw: Mapping[str, Any] | None) -> Limits | None:
    """The limits of a `limits` block that passed `limit_problems`; None without one."""
    if not raw:
        return None
    cpu = raw.get("cpu_time")
    return Limits(memory=parse_size(raw["memory"]) if "memory" in raw else None,
                  cpu_time=max(1, round(parse_duration(cpu).total_seconds())) if cpu is not None else None,
                  open_files=whole(raw.get("open_files")), processes=whole(raw.get("processes")))


def limit_problems(raw: Any) -> list[tuple[str, str]]:
    """(key, message) for what the schema cannot say about a `limits` block."""
    if not isinstance(raw, dict):
        return []
    out: list[tuple[str, str]] = []
    if "memory" in raw:
        try:
            n = parse_size(raw["memory"])
        except SizeError:
            pass  # the schema reports it
        else:
            if n < MIN_MEMORY:
                out.append(("memory", f"memory {format_size(n)} is too small for any program to start; "
                                      f"at least {format_size(MIN_MEMORY)} (did you mean {raw['memory']}Mi?)"))
    if "cpu_time" in raw:
        try:
            if parse_duration(raw["cpu_time"]) < timedelta(seconds=1):
                out.append(("cpu_time", "cpu_time is counted in whole seconds: at least 1s"))
        except ValueError:
            pass  # the schema reports it
    return out


@dataclass(frozen=True, slots=True)
class Usage:
    """What a run used: peak memory in bytes, CPU seconds in user and system mode."""

    peak_memory: int | None = None
    cpu_user: float | None = None
    cpu_system: float | None = None
