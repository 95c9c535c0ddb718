"""`reconciler plan`: what would change, and when it would fire. Exit 0 none, 2 changes, 1 errors."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reconciler.core.describe import describe, local_text, utc_text
from reconciler.core.loader import Loader, PathError, combine
from reconciler.core.model import Schedule
from reconciler.core.plan import Change, FieldChange, Plan, plan
from reconciler.errors import EXIT_PROBLEMS, FatalError, UsageError

EXIT_CHANGES = 2
FORMATS = ("text", "json", "markdown")


def run_plan(directory: str, base: str | None, ledger_path: str | None, fmt: str, out: TextIO = sys.stdout,
             now: datetime | None = None) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if base and ledger_path:
        raise UsageError("give --base or --ledger, not both")
    now = now or datetime.now(UTC)
    loader = Loader()
    try:
        desired = loader.load_paths([directory], now=now)
    except PathError as e:
        raise UsageError(str(e)) from e
    errors = [p for p in desired.problems if p.severity == "error"]
    if errors:
        for p in errors:
            print(p.format_text(), file=sys.stderr)
        print(f"plan: {len(errors)} problem(s); nothing can be planned until they are fixed", file=sys.stderr)
        return EXIT_PROBLEMS
    applied, against = _applied(directory, base, ledger_path, loader, now)
    schedules = {s.name: s for s in desired.schedules}
    the_plan = plan({n: s.spec for n, s in schedules.items()}, applied)
    render = {"text": _text, "json": _json, "markdown": _markdown}[fmt]
    out.write(render(the_plan, schedules, against, now))
    return EXIT_CHANGES if not the_plan.empty else 0


def _applied(directory: str, base: str | None, ledger_path: str | None, loader: Loader,
             now: datetime) -> tuple[dict[str, dict[str, Any]], str]:
    if base:
        from reconciler.gitrepo import GitError, files_at

        try:
            files = files_at(directory, base)
        except GitError as e:
            raise FatalError(f"--base {base}: {e}") from e
        results = [loader.load_bytes(str(Path(directory) / rel), data, now) for rel, data in sorted(files.items())]
        return {s.name: s.spec for s in combine(results).schedules}, f"git {base}"
    if ledger_path:
        from reconciler.ledger import open_ledger

        if not Path(ledger_path).exists():
            raise UsageError(f"{ledger_path}: no such ledger")
        ledger = open_ledger(ledger_path)
        try:
            last = ledger.last_revision()
            if last is None:
                return {}, "an empty ledger"
            return last.specs(ledger), f"revision {last.revision} (applied {utc_text(last.applied_at)})"
        finally:
            ledger.close()
    return {}, "nothing (no --base or --ledger)"


def next_fires(s: Schedule, now: datetime, n: int = 3) -> list[datetime]:
    return list(s.timing.slots(now, n)) if s.enabled else []


def _value(v: Any, present: bool = True) -> str:
    return json.dumps(v, ensure_ascii=False) if present else "(absent)"


def _field_line(f: FieldChange) -> str:
    return f"{f.path}: {_value(f.old, f.old_present)} -> {_value(f.new, f.new_present)}"


def _text(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime) -> str:
    lines = [f"Plan against {against}: {p.summary()}."]
    for c in p.changes():
        mark = {"add": "+", "change": "~", "remove": "-"}[c.action.value]
        s = schedules.get(c.name)
        where = f"  ({s.source.path}:{s.source.line})" if s else ""
        lines.append(f"{mark} {c.name}{where}" + ("  [metadata only]" if c.metadata_only else ""))
        lines.extend(f"    {_field_line(f)}" for f in c.fields)
        if s is not None:
            lines.append(f"    when: {describe(s.timing)} [{s.timing.tz.key}]" + ("" if s.enabled else " (suspended)"))
            for t in next_fires(s, now):
                lines.append(f"    next: {local_text(t, s.timing)}  {utc_text(t)}")
    return "\n".join(lines) + "\n"


def _change_json(c: Change, schedules: dict[str, Schedule], now: datetime) -> dict[str, Any]:
    s = schedules.get(c.name)
    out: dict[str, Any] = {"name": c.name, "action": c.action.value}
    if c.fields:
        out["fields"] = [{"path": f.path, "old": f.old if f.old_present else None,
                          "new": f.new if f.new_present else None} for f in c.fields]
        out["metadata_only"] = c.metadata_only
    if s is not None:
        out["source"] = f"{s.source.path}:{s.source.line}"
        out["next"] = [utc_text(t) for t in next_fires(s, now)]
    return out


def _json(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime) -> str:
    data = {"against": against, "summary": p.counts(),
            "add": [_change_json(c, schedules, now) for c in p.added],
            "change": [_change_json(c, schedules, now) for c in p.changed],
            "remove": [_change_json(c, schedules, now) for c in p.removed]}
    return json.dumps(data, indent=2) + "\n"


def _markdown(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime) -> str:
    out = [f"### Schedule plan: {p.summary()}", "", f"Compared with {against}.", ""]
    if p.empty:
        return "\n".join([*out, "No changes."]) + "\n"
    out += ["| | schedule | change | next fire times |", "|---|---|---|---|"]
    for c in p.changes():
        mark = {"add": "add", "change": "change", "remove": "**remove**"}[c.action.value]
        s = schedules.get(c.name)
        detail = "<br>".join(_md(_field_line(f)) for f in c.fields) or (
            _md(f"{describe(s.timing)} [{s.timing.tz.key}]") if s else "")
        nxt = "<br>".join(f"{local_text(t, s.timing)}" for t in next_fires(s, now)) if s else ""
        out.append(f"| {mark} | `{c.name}` | {detail} | {nxt} |")
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
