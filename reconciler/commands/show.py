"""`reconciler show NAME [--effective]`: one schedule's spec, as written or as it runs (with the
directory defaults merged in, each inherited value followed by the `file:line` it comes from), and
the schedules it depends on and that depend on it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reconciler.commands.common import did_you_mean
from reconciler.core.defaults import chain_for, effective_lines, origins, own_spec
from reconciler.core.deps import downstreams
from reconciler.core.loader import Loader, LoadResult
from reconciler.core.model import Schedule
from reconciler.errors import FatalError, UsageError


def show(name: str, directory: str = "schedules", effective: bool = False, fmt: str = "text",
         out: TextIO = sys.stdout, now: datetime | None = None) -> int:
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}: choose text or json")
    result = Loader().load_paths([directory], now=now or datetime.now(UTC))
    s = next((x for x in result.schedules if x.name == name), None)
    if s is None:
        for p in result.problems:
            if p.severity == "error":
                print(p.format_text(), file=sys.stderr)
        hint = did_you_mean(name, (x.name for x in result.schedules))
        raise FatalError(f"no valid schedule named {name!r} in {directory}{hint}")
    facts = describe_one(result, s)
    if fmt == "json":
        shown = {k: v for k, v in facts.items() if k != "chain" and (effective or k not in ("effective", "origins"))}
        json.dump(shown, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    out.write(f"# {name}  ({s.source.path}:{s.source.line})\n")
    where = f"{s.source.path}:{s.source.line}"
    if effective:
        out.write("\n".join(effective_lines(facts["spec"], facts["chain"], where)) + "\n")
    else:
        out.write("\n".join(effective_lines(facts["spec"], (), where)) + "\n")
    out.write(f"upstreams: {', '.join(facts['upstreams']) or '(none)'}\n")
    out.write(f"downstreams: {', '.join(facts['downstreams']) or '(none)'}\n")
    return 0


def describe_one(result: LoadResult, s: Schedule) -> dict[str, Any]:
    """The schedule as written, as it runs, where inherited values come from, and its neighbours."""
    chain = chain_for(s.source.path, result.defaults) if result.defaults else ()
    own = own_spec(Path(s.source.path).read_bytes(), s.source.path, s.source.document) if chain else s.spec
    own = own if own is not None else s.spec
    graph = {f.name: f for r in result.files for f in r.graph}
    return {
        "name": s.name, "source": f"{s.source.path}:{s.source.line}", "spec": own, "chain": chain,
        "effective": s.spec,
        "origins": {".".join(map(str, k)): v for k, v in origins(own, chain).items()},
        "defaults": [d.path for d in chain],
        "upstreams": list(s.deps.upstreams), "downstreams": downstreams(graph).get(s.name, []),
    }
