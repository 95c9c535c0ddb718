"""`reconciler plan`: what would change, and when it would fire. Exit 0 none, 2 changes, 1 errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.core import policy
from reconciler.core.defaults import chain_for, origins, own_spec
from reconciler.core.deps import edges_of, ref_of
from reconciler.core.describe import describe, local_text, utc_text
from reconciler.core.loader import Loader, LoadResult, library_file, load_library, resolve
from reconciler.core.model import Schedule, Source
from reconciler.core.plan import Change, FieldChange, Plan, plan
from reconciler.core.pools import POOLS_FILE
from reconciler.core.review import warnings
from reconciler.core.timerules import LIBRARY_DIRS, Library, build_library, library_entry
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
    applied, against, base_library = _applied(directory, base, ledger_path, ledger, replace(loader, strict_cron=False),
                                              now)
    schedules = {s.name: s for s in desired.schedules}
    the_plan = plan({n: s.spec for n, s in schedules.items()}, applied)
    warned = warnings(the_plan, schedules, now, _last_runs(ledger, now) if ledger is not None else None)
    if ledger is not None:
        warned += _paused(the_plan, ledger, now)
    moved = moved_by_rules(schedules, applied, base_library, now) if base_library is not None else []
    warned.extend(moved)
    resized = pool_changes(base_library.pools or {}, load_library([directory]).pools or {}) \
        if base_library is not None else []
    warned.extend(resized)
    extra = Extra(graph_change(applied, schedules), inherited(desired, the_plan))
    render = {"text": _text, "json": _json, "markdown": _markdown}[fmt]
    out.write(render(the_plan, schedules, against, now, warned, extra))
    # A calendar or windows file that moves fire times is a change to review, as a field would be;
    # so is a dependency edge.
    changed = not the_plan.empty or moved or resized or extra.graph.added or extra.graph.removed
    return EXIT_CHANGES if changed else 0


# ---- issue 18: what directory defaults and dependencies add to a plan --------------------------------


@dataclass(frozen=True)
class GraphChange:
    added: list[tuple[str, str]]  # (upstream, downstream)
    removed: list[tuple[str, str]]


@dataclass(frozen=True)
class Extra:
    graph: GraphChange
    origins: dict[str, dict[str, str]]  # schedule -> field path -> `file:line` of the default it takes


def pool_changes(old: Mapping[str, int], new: Mapping[str, int]) -> list[tuple[str, str]]:
    """pools.yaml's changes against --base, as (file, what) lines: a size is live in the daemon."""
    out = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            out.append((POOLS_FILE, f"pool {name} added: size {new[name]}"))
        elif name not in new:
            out.append((POOLS_FILE, f"pool {name} removed (size {old[name]}): schedules in it are rejected"))
        elif old[name] != new[name]:
            out.append((POOLS_FILE, f"pool {name}: size {old[name]} -> {new[name]} (runs at most running at once, "
                                    "across replicas)"))
    return out


def graph_change(applied: dict[str, dict[str, Any]], schedules: dict[str, Schedule]) -> GraphChange:
    """The edges of the dependency graph this plan adds and removes."""
    nowhere = Source("", 0, 0)
    old = edges_of({n: r for n, spec in applied.items() if (r := ref_of(spec, nowhere)) is not None})
    new = edges_of({n: r for n, s in schedules.items() if (r := ref_of(s.spec, s.source)) is not None})
    return GraphChange(sorted(new - old), sorted(old - new))


def inherited(desired: LoadResult, p: Plan) -> dict[str, dict[str, str]]:
    """For each added or changed schedule under directory defaults: which of its values come from
    a defaults file, and from which line."""
    if not desired.defaults:
        return {}
    by_name = {s.name: s for s in desired.schedules}
    out: dict[str, dict[str, str]] = {}
    for c in (*p.added, *p.changed):
        s = by_name.get(c.name)
        chain = chain_for(s.source.path, desired.defaults) if s else ()
        if s is None or not chain:
            continue
        try:
            own = own_spec(Path(s.source.path).read_bytes(), s.source.path, s.source.document)
        except OSError:
            continue
        if own is not None:
            out[c.name] = {".".join(map(str, k)): v for k, v in origins(own, chain).items()}
    return out


def _from(extra: Extra, name: str, path: str) -> str:
    found = extra.origins.get(name, {})
    where = found.get(path) or next((v for k, v in found.items() if k.startswith(path + ".")), None)
    return f"  (from {where})" if where else ""


def _graph_lines(g: GraphChange) -> list[str]:
    return ([f"+ dependency: {down} after {up}" for up, down in g.added]
            + [f"- dependency: {down} after {up}" for up, down in g.removed])

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
             now: datetime) -> tuple[dict[str, dict[str, Any]], str, Library | None]:
    """The other side's specs, what it is, and (with --base) its calendars and windows files."""
    if base:
        from reconciler.gitrepo import GitError, files_at

        try:
            files = files_at(directory, base)
        except GitError as e:  # git's message alone does not say which option it was about
            raise GitError(f"--base {base}: {e}") from e
        shared = [f for rel, data in sorted(files.items()) if library_entry(rel) is not None
                  and (f := library_file(rel, str(Path(directory) / rel), data, rel + str(hash(data)))) is not None]
        library = build_library(shared)
        documents = {str(Path(directory) / rel): data for rel, data in sorted(files.items())
                     if (rel.split("/")[0] not in LIBRARY_DIRS or "/" not in rel) and rel != POOLS_FILE}
        loaded = loader.load_files(documents, now, library=library)  # with the base's defaults files too
        # With --base too, the ledger is read only for its recent runs (the "removed, but it ran" warning).
        runs = f" (recent runs from the ledger {ledger_path})" if ledger_path else ""
        return {s.name: s.spec for s in loaded.schedules}, f"git {base}{runs}", library
    if ledger is not None:  # without --base, the ledger's last applied revision is the other side
        last = ledger.last_revision()
        if last is None:
            return {}, "an empty ledger", None
        return last.specs(ledger), f"revision {last.revision} (applied {utc_text(last.applied_at)})", None
    return {}, "nothing (no --base or --ledger)", None


MOVED_HORIZON = 20  # slots compared when calendar or windows files change


def moved_by_rules(schedules: dict[str, Schedule], applied: dict[str, dict[str, Any]], base_library: Library,
                   now: datetime) -> list[tuple[str, str]]:
    """Schedules whose spec did not change but whose next fire times a calendar or windows file moves:
    each slot whose fate differs, then and now."""
    out: list[tuple[str, str]] = []
    for name, s in sorted(schedules.items()):
        if s.rules.empty or applied.get(name) != s.spec or not s.enabled:
            continue
        resolved, _ = resolve([s], base_library)
        if not resolved:  # it named a file the base lacks: a change of its own, shown by the fields
            continue
        old = resolved[0]
        changes = []
        for slot in s.timing.slots(now, MOVED_HORIZON):
            was, now_note = policy.slot_note(old, slot), policy.slot_note(s, slot)
            if was != now_note:
                changes.append(f"{local_text(slot, s.timing)} {now_note or 'runs'} (was: {was or 'runs'})")
        if changes:
            out.append((name, "calendar or windows files move its next fire times: " + "; ".join(changes[:5])))
    return out


def next_fires(s: Schedule, now: datetime, n: int = 3) -> list[datetime]:
    return list(s.timing.slots(now, n)) if s.enabled else []


def _note(s: Schedule, t: datetime) -> str:
    """What windows and calendars do to a slot, after two spaces, or nothing."""
    note = policy.slot_note(s, t)
    return f"  {note}" if note else ""


def _value(v: Any, present: bool = True) -> str:
    return json.dumps(v, ensure_ascii=False) if present else "(absent)"


def _field_line(f: FieldChange) -> str:
    return f"{f.path}: {_value(f.old, f.old_present)} -> {_value(f.new, f.new_present)}"


Warnings = list[tuple[str, str]]


def _when(s: Schedule) -> str:
    if s.deps.after:
        return f"after {', '.join(s.deps.after)} (on {s.deps.on}{', all' if s.deps.all else ''})"
    return f"{describe(s.timing)} [{s.timing.tz.key}]"


def _text(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings,
          extra: Extra) -> str:
    lines = [f"Plan against {against}: {p.summary()}."]
    lines.extend(_graph_lines(extra.graph))
    lines.extend(f"warning: {name}: {w}" for name, w in warned)
    for c in p.changes():
        mark = {"add": "+", "change": "~", "remove": "-"}[c.action.value]
        s = schedules.get(c.name)
        where = f"  ({s.source.path}:{s.source.line})" if s else ""
        lines.append(f"{mark} {c.name}{where}" + ("  [metadata only]" if c.metadata_only else ""))
        lines.extend(f"    {_field_line(f)}{_from(extra, c.name, f.path)}" for f in c.fields)
        if s is not None:
            lines.append(f"    when: {_when(s)}" + ("" if s.enabled else " (suspended)"))
            for t in next_fires(s, now):
                lines.append(f"    next: {local_text(t, s.timing)}  {utc_text(t)}{_note(s, t)}")
    return "\n".join(lines) + "\n"


def _change_json(c: Change, schedules: dict[str, Schedule], now: datetime, extra: Extra) -> dict[str, Any]:
    s = schedules.get(c.name)
    out: dict[str, Any] = {"name": c.name, "action": c.action.value}
    if c.name in extra.origins:
        out["from_defaults"] = extra.origins[c.name]
    if c.fields:
        out["fields"] = [{"path": f.path, "old": f.old if f.old_present else None,
                          "new": f.new if f.new_present else None} for f in c.fields]
        out["metadata_only"] = c.metadata_only
    if s is not None:
        out["source"] = f"{s.source.path}:{s.source.line}"
        fires = next_fires(s, now)
        out["next"] = [utc_text(t) for t in fires]
        if any(notes := [policy.slot_note(s, t) for t in fires]):
            out["notes"] = notes
    return out


def _json(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings,
          extra: Extra) -> str:
    data = {"against": against, "summary": p.counts(),
            "warnings": [{"schedule": n, "message": w} for n, w in warned],
            "add": [_change_json(c, schedules, now, extra) for c in p.added],
            "change": [_change_json(c, schedules, now, extra) for c in p.changed],
            "remove": [_change_json(c, schedules, now, extra) for c in p.removed],
            "dependencies": {"added": [{"upstream": u, "downstream": d} for u, d in extra.graph.added],
                             "removed": [{"upstream": u, "downstream": d} for u, d in extra.graph.removed]}}
    return json.dumps(data, indent=2) + "\n"


def _markdown(p: Plan, schedules: dict[str, Schedule], against: str, now: datetime, warned: Warnings,
              extra: Extra) -> str:
    """For a pull-request comment or a job summary: compact, escaped, readable in review."""
    c = p.counts()
    out = [f"### Schedules: {c['add']} to add, {c['change']} to change, {c['remove']} to remove",
           "", f"Compared with {_md(against)}; {c['unchanged']} unchanged.", ""]
    if warned:
        out += ["> [!WARNING]", *[f"> - `{n}`: {_md(w)}" for n, w in warned], ""]
    g = extra.graph
    if g.added or g.removed:  # the dependency graph this change touches, as GitHub draws Mermaid
        out += ["Dependencies changed:", "", "```mermaid", "graph LR"]
        out += [f"  {_node(u)} --> {_node(d)}" for u, d in g.added]
        out += [f"  {_node(u)} -. removed .-> {_node(d)}" for u, d in g.removed]
        out += ["```", ""]
    if p.empty:
        return "\n".join([*out, "No changes."]) + "\n"
    out += ["| | schedule | change | when | next fire times |", "|---|---|---|---|---|"]
    for ch in p.changes():
        mark = {"add": "add", "change": "change", "remove": "**remove**"}[ch.action.value]
        s = schedules.get(ch.name)
        if ch.fields:
            detail = "<br>".join(f"`{_md(f.path)}`: {_md(_short(f.old, f.old_present))} → "
                                 f"{_md(_short(f.new, f.new_present))}{_md(_from(extra, ch.name, f.path))}"
                                 for f in ch.fields)
        else:
            detail = "new" if ch.action.value == "add" else ""
        shown = _when(s) if s and s.deps.after else f"{describe(s.timing)} ({s.timing.tz.key})" if s else ""
        when = _md(shown) + ("" if s.enabled else ", suspended") if s else ""
        nxt = "<br>".join(_md(local_text(t, s.timing) + _note(s, t)) for t in next_fires(s, now)) if s else ""
        out.append(f"| {mark} | `{ch.name}` | {detail} | {when} | {nxt} |")
    return "\n".join(out) + "\n"


def _node(name: str) -> str:
    return name  # names are [a-z0-9-]: safe as Mermaid node ids


def _short(v: Any, present: bool) -> str:
    text = _value(v, present)
    return text if len(text) <= 80 else text[:77] + "..."


def _md(text: str) -> str:
    """Escaped for a Markdown table cell: untrusted text from files never becomes markup."""
    for ch in "\\`*_[]|<>":
        text = text.replace(ch, "\\" + ch if ch not in "<>" else {"<": "&lt;", ">": "&gt;"}[ch])
    return text.replace("\n", " ")
