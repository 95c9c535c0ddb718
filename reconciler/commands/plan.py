"""`reconciler plan`: what would change, and when it would fire. Exit 0 none, 2 changes, 1 errors."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.core.describe import describe, local_text, utc_text
from reconciler.core.loader import Loader, combine
from reconciler.core.model import Schedule
from reconciler.core.plan import Change, FieldChange, Plan, plan
from reconciler.core.review import warnings
from reconciler.errors import EXIT_CHANGES, EXIT_PROBLEMS, UsageError

if TYPE_CHECKING:
    from reconciler.ledger.base import Ledger

FORMATS = ("text", "json", "markdown")


def run_plan(directory: str, base: str | None, ledger_path: str | None, fmt: str, out: TextIO = sys.stdout,
             now: datetime | None = None, strict_cron: bool = False) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    # Opened first, with or without --base: a mistyped path must never pass for a plan (exit 2).
    ledger = _open(ledger_path) if ledger_path else None
    try:  # one connection serves both the comparison and the recent runs behind the warnings
        return _plan(directory, base, ledger_path, ledger, fmt, out, now or datetime.now(UTC), strict_cron)
    finally:
        if ledger is not None:
            ledger.close()


def _plan(directory: str, base: str | None, ledger_path: str | None, ledger: Ledger | None, fmt: str,
          out: TextIO, now: datetime, strict_cron: bool = False) -> int:
    loader = Loader(strict_cron=strict_cron)
    desired = loader.load_paths([directory], now=now)
    errors = [p for p in desired.problems if p.severity == "error"]
    if errors:
        for p in errors:
            print(p.format_text(), file=sys.stderr)
        print(f"plan: {len(errors)} problem(s); nothing can be planned until they are fixed", file=sys.stderr)
        return EXIT_PROBLEMS
    # The other side is what was: --strict-cron judges only what is proposed.
    applied, against = _applied(directory, base, ledger_path, ledger, replace(loader, strict_cron=False), now)
    schedules = {s.name: s for s in desired.schedules}
    the_plan = plan({n: s.spec for n, s in schedules.items()}, applied)
    warned = warnings(the_plan, schedules, now, _last_runs(ledger, now) if ledger is not None else None)
    if ledger is not None:
        warned += _paused(the_plan, ledger, now)
    render = {"text": _text, "json": _json, "markdown": _markdown}[fmt]
    out.write(render(the_plan, schedules, against, now, warned))
    return EXIT_CHANGES if not the_plan.empty else 0


def _open(ledger_path: str) -> Ledger:
    from reconciler.ledger import NoSuchLedger, open_ledger

    try:
        return open_ledger(ledger_path, create=False)
    except NoSuchLedger as e:
        raise UsageError(str(e)) from e


def _paused(the_plan: Plan, ledger: Ledger, now: datetime) -> list[tuple[str, str]]:
    """A change to a schedule an operator paused: the pause outlives it (`reconciler resume`)."""
    from reconciler.core.policy import pause_active, pause_message

    pauses = ledger.pauses()
    return [(c.name, f"{pause_message(pauses[c.name])}; its slots stay skipped until it is resumed")
            for c in the_plan.changes() if c.name in pauses and pause_active(pauses[c.name], now)]


def _last_runs(ledger: Ledger, now: datetime) -> dict[str, datetime]:
    """When each schedule last started a run within the last day ('removed, but it ran recently')."""
    last: dict[str, datetime] = {}
    for r in ledger.runs(since=now - timedelta(days=1), limit=1_000_000):  # newest first
        if r.started_at is not None:
            last.setdefault(r.schedule, r.started_at)
    return last


def _applied(directory: str, base: str | None, ledger_path: str | None, ledger: Ledger | None, loader: Loader,
             now: datetime) -> tuple[dict[str, dict[str, Any]], str]:
    if base:
        from reconciler.gitrepo import GitError, files_at

        try:
            files = files_at(directory, base)
        except GitError as e:  # git's message alone does not say which option it was about
            raise GitError(f"--base {base}: {e}") from e
        results = [loader.load_bytes(str(Path(directory) / rel), data, now) for rel, data in sorted(files.items())]
        # With --base too, the ledger is read only for its recent runs (the "removed, but it ran" warning).
        runs = f" (recent runs from the ledger {ledger_path})" if ledger_path else ""
        return {s.name: s.spec for s in combine(results).schedules}, f"git {base}{runs}"
    if ledger is not None:  # without --base, the ledger's last applied revision is the other side
        last = ledger.last_revision()
        if last is None:
            return {}, "an empty ledger"
        return last.specs(ledger), f"revision {last.revision} (applied {utc_text(last.applied_at)})"
    return {}, "nothing (no --base or --ledger)"


def next_fires(s: Schedule, now: datetime, n: int = 3) -> list[datetime]:
    return list(s.timing.slots(now, n)) if s.enabled else []


def _value(v: Any, present: bool = True) -> str:
    return json.dumps(v, ensure_ascii=False) if present else "(absent)"


def _field_line(f: FieldChange) -> str:
    return f"{f.path}: {_value(f.old, f.old_present)} -> {_value(f.new, f.new_present)}"


Warnings = list[tuple[str, str]]


def _text(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings) -> str:
    lines = [f"Plan against {against}: {p.summary()}."]
    lines.extend(f"warning: {name}: {w}" for name, w in warned)
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


def _json(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings) -> str:
    data = {"against": against, "summary": p.counts(),
            "warnings": [{"schedule": n, "message": w} for n, w in warned],
            "add": [_change_json(c, schedules, now) for c in p.added],
            "change": [_change_json(c, schedules, now) for c in p.changed],
            "remove": [_change_json(c, schedules, now) for c in p.removed]}
    return json.dumps(data, indent=2) + "\n"


def _markdown(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings) -> str:
    """For a pull-request comment or a job summary: compact, escaped, readable in review."""
    c = p.counts()
    out = [f"### Schedules: {c['add']} to add, {c['change']} to change, {c['remove']} to remove",
           "", f"Compared with {_md(against)}; {c['unchanged']} unchanged.", ""]
    if warned:
        out += ["> [!WARNING]", *[f"> - `{n}`: {_md(w)}" for n, w in warned], ""]
    if p.empty:
        return "\n".join([*out, "No changes."]) + "\n"
    out += ["| | schedule | change | when | next fire times |", "|---|---|---|---|---|"]
    for ch in p.changes():
        mark = {"add": "add", "change": "change", "remove": "**remove**"}[ch.action.value]
        s = schedules.get(ch.name)
        if ch.fields:
            detail = "<br>".join(f"`{_md(f.path)}`: {_md(_short(f.old, f.old_present))} → "
                                 f"{_md(_short(f.new, f.new_present))}" for f in ch.fields)
        else:
            detail = "new" if ch.action.value == "add" else ""
        when = f"{_md(describe(s.timing))} ({s.timing.tz.key})" + ("" if s.enabled else ", suspended") if s else ""
        nxt = "<br>".join(_md(local_text(t, s.timing)) for t in next_fires(s, now)) if s else ""
        out.append(f"| {mark} | `{ch.name}` | {detail} | {when} | {nxt} |")
    return "\n".join(out) + "\n"


def _short(v: Any, present: bool) -> str:
    text = _value(v, present)
    return text if len(text) <= 80 else text[:77] + "..."


def _md(text: str) -> str:
    """Escaped for a Markdown table cell: untrusted text from files never becomes markup."""
    for ch in "\\`*_[]|<>":
        text = text.replace(ch, "\\" + ch if ch not in "<>" else {"<": "&lt;", ">": "&gt;"}[ch])
    return text.replace("\n", " ")
