"""Time rules a schedule refers to: its windows (inline, or shared in `windows/NAME.yaml`) and its
calendars (`calendars/NAME.yaml` or `calendars/NAME.ics`), resolved into one value, `TimeRules`,
that the policy reads. Pure: library files arrive as bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from reconciler.core import cron
from reconciler.core.calendars import MAX_SHIFT_DAYS, WEEKDAYS, Calendar, holiday_problem, parse_date, parse_ics
from reconciler.core.durations import DurationError, parse_duration
from reconciler.core.pools import POOLS, POOLS_FILE, PoolSet, parse_pools
from reconciler.core.problems import JsonPath, Problem, excerpt
from reconciler.core.timing import EPOCH, Timing
from reconciler.core.windows import Window
from reconciler.core.yamlstrict import Document, decode, load_documents

Outside = Literal["skip", "defer"]
OnExcluded = Literal["skip", "next_business_day"]
CALENDARS = "calendars"  # directories beside the schedules, at the top of the schedules directory
WINDOWS = "windows"
LIBRARY_DIRS = (CALENDARS, WINDOWS)
ICS_SUFFIX = ".ics"
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TimeRules:
    windows: tuple[Window, ...] = ()
    outside: Outside = "skip"
    manual: bool = True  # a manual trigger may run outside the windows
    exclude: tuple[Calendar, ...] = ()
    only: tuple[Calendar, ...] = ()
    on_excluded: OnExcluded = "skip"

    @property
    def empty(self) -> bool:
        return not (self.windows or self.exclude or self.only)


NO_RULES = TimeRules()


# ---- the calendar rule ---------------------------------------------------------------------------


def excluded(rules: TimeRules, d: date) -> str | None:
    """Why the local date `d` is excluded ("calendar de-by-holidays (Christmas Day)"), or None."""
    if rules.only and not any(d in cal for cal in rules.only):  # not a day of the schedule at all
        return f"not in calendar {', '.join(c.name for c in rules.only)}"
    for cal in rules.exclude:
        why = cal.reason(d)
        if why is not None:
            return f"calendar {cal.name} ({why})"
    return None


def shiftable(rules: TimeRules, d: date) -> bool:
    """Does an excluded date shift? Only a date the schedule wants (in `only`, if given) that an
    `exclude` calendar removes: a day outside `only` is not a day of the schedule at all."""
    return rules.on_excluded == "next_business_day" and (not rules.only or any(d in c for c in rules.only))


def next_business_day(rules: TimeRules, d: date) -> date | None:
    """The first date after `d` that no `exclude` calendar holds (within a year), or None."""
    for _ in range(MAX_SHIFT_DAYS):
        d += _ONE_DAY
        if not any(d in cal for cal in rules.exclude):
            return d
    return None


def shifted(rules: TimeRules, slot: datetime, tz: ZoneInfo) -> datetime | None:
    """The slot moved to the same wall time on the next business day, in UTC (a wall time that
    does not exist that day is taken as the instant after the jump, as cron's fixed-time jobs)."""
    wall = slot.astimezone(tz)
    day = next_business_day(rules, wall.date())
    if day is None:
        return None
    local = datetime.combine(day, wall.timetz().replace(tzinfo=None)).replace(tzinfo=tz)
    return local.astimezone(ZoneInfo("UTC"))


# ---- the library: shared files, parsed -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowSet:
    name: str
    windows: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class LibraryFile:
    kind: str  # calendars or windows
    name: str
    path: str
    item: Calendar | WindowSet | PoolSet | None  # None: it has errors
    problems: tuple[Problem, ...] = ()
    needs: tuple[str, ...] = ()  # calendars a last_business_day_of_month calendar excludes


@dataclass(frozen=True, slots=True)
class Library:
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    windows: Mapping[str, WindowSet] = field(default_factory=dict)
    paths: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> file
    problems: tuple[Problem, ...] = ()
    pools: Mapping[str, int] | None = None  # pools.yaml's sizes; None: no usable pools.yaml


def library_entry(rel: str) -> tuple[str, str] | None:
    """(kind, name) of a library file by its path relative to the schedules directory, or None."""
    if rel == POOLS_FILE:
        return POOLS, POOLS
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] not in LIBRARY_DIRS or parts[1].startswith("."):
        return None
    base = parts[1]
    for suffix in (".yaml", ".yml") + ((ICS_SUFFIX,) if parts[0] == CALENDARS else ()):
        if base.endswith(suffix) and len(base) > len(suffix):
            return parts[0], base[: -len(suffix)]
    return None


def build_library(files: list[LibraryFile]) -> Library:
    calendars: dict[str, Calendar] = {}
    windows: dict[str, WindowSet] = {}
    paths: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    needing: list[LibraryFile] = []
    pools: Mapping[str, int] | None = None
    for f in sorted(files, key=lambda f: f.path):
        problems.extend(f.problems)
        key = (f.kind, f.name)
        if key in paths:
            what = f"{f.kind[:-1]} {f.name!r} is defined twice (also in {paths[key]})"
            problems.append(Problem(f.path, 1, 1, (), what))
            continue
        paths[key] = f.path
        if isinstance(f.item, Calendar) and f.needs:
            needing.append(f)
        elif isinstance(f.item, Calendar):
            calendars[f.name] = f.item
        elif isinstance(f.item, WindowSet):
            windows[f.name] = f.item
        elif isinstance(f.item, PoolSet):
            pools = f.item.sizes
    for f in needing:  # one level: such a calendar names plain calendars only, so there is no cycle
        assert isinstance(f.item, Calendar)
        missing = [n for n in f.needs if n not in calendars]
        if missing:
            problems.append(Problem(f.path, 1, 1, ("last_business_day_of_month", "excluding"),
                                    f"no usable calendar {missing[0]!r} (it must exist, without problems, and "
                                    "not be a last_business_day_of_month calendar itself)"))
            continue
        calendars[f.name] = replace(f.item, last_business_day=tuple(calendars[n] for n in f.needs))
    return Library(calendars, windows, paths, tuple(problems), pools)


ZoneLookup = Callable[[str], "ZoneInfo | None"]


def parse_library_file(kind: str, name: str, path: str, data: bytes, digest: str, zone: ZoneLookup) -> LibraryFile:
    """A calendar, windows or pools file's value, or its problems (file, line, field)."""
    if kind == POOLS:
        pools, found = parse_pools(path, data)
        return LibraryFile(kind, name, path, pools, found)
    if kind == CALENDARS and path.endswith(ICS_SUFFIX):
        cal, why = parse_ics(name, data, digest)
        return LibraryFile(kind, name, path, cal, (Problem(path, 1, 1, (), why),) if why else ())
    text, problems = decode(data, path)
    if text is None:
        return LibraryFile(kind, name, path, None, tuple(problems))
    docs, problems = load_documents(text, path)
    if problems or len(docs) != 1:
        if not problems:
            problems.append(Problem(path, 1, 1, (), f"a {kind[:-1]} file holds exactly one YAML document"))
        return LibraryFile(kind, name, path, None, tuple(problems))
    doc = docs[0]
    c = _Check(doc, path)
    value = doc.value
    if not isinstance(value, dict):
        c.add((), f"a {kind[:-1]} file is a mapping of fields")
        return LibraryFile(kind, name, path, None, tuple(c.problems))
    item: Calendar | WindowSet | None
    item = _calendar(c, name, value, digest) if kind == CALENDARS else _window_set(c, name, value, zone)
    needs = _needs(c, value, kind)
    return LibraryFile(kind, name, path, None if c.problems else item,
                       tuple(sorted(c.problems, key=lambda p: (p.line, p.column))), needs)


def _needs(c: _Check, value: dict[str, Any], kind: str) -> tuple[str, ...]:
    raw = value.get("last_business_day_of_month") if kind == CALENDARS else None
    if raw is None:
        return ()
    names = raw.get("excluding") if isinstance(raw, dict) and set(raw) == {"excluding"} else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        c.add(("last_business_day_of_month",), "write {excluding: [CALENDAR, ...]}: the calendars of "
              "non-business days, e.g. [weekend, de-holidays]")
        return ()
    return tuple(names)


class _Check:
    def __init__(self, doc: Document, path: str) -> None:
        self.doc, self.path, self.problems = doc, path, list[Problem]()

    def add(self, ptr: JsonPath, message: str) -> None:
        line, col = self.doc.location(ptr)
        self.problems.append(Problem(self.path, line, col, ptr, message))


_CALENDAR_FIELDS = ("description", "dates", "ranges", "weekdays", "holidays", "month_ends",
                    "last_business_day_of_month")


def _calendar(c: _Check, name: str, value: dict[str, Any], digest: str) -> Calendar:
    for key in value:
        if key not in _CALENDAR_FIELDS:
            c.add((key,), f"unknown field {excerpt(key)}; expected one of: {', '.join(_CALENDAR_FIELDS)}")
    dates: set[date] = set()
    for i, raw in enumerate(_list(c, value, "dates")):
        d = parse_date(raw)
        if d is None:
            c.add(("dates", i), f"{excerpt(raw)} is not a date: write YYYY-MM-DD")
        else:
            dates.add(d)
    ranges = []
    for i, raw in enumerate(_list(c, value, "ranges")):
        if not isinstance(raw, dict) or set(raw) != {"from", "to"}:
            c.add(("ranges", i), "a range is {from: YYYY-MM-DD, to: YYYY-MM-DD} (both days included)")
            continue
        low, high = parse_date(raw["from"]), parse_date(raw["to"])
        if low is None or high is None:
            c.add(("ranges", i, "from" if low is None else "to"), "not a date: write YYYY-MM-DD")
        elif high < low:
            c.add(("ranges", i, "to"), "to is before from")
        else:
            ranges.append((low, high))
    weekdays = set()
    for i, raw in enumerate(_list(c, value, "weekdays")):
        if isinstance(raw, str) and raw.lower()[:3] in WEEKDAYS and raw.lower() in (raw.lower()[:3], _full(raw)):
            weekdays.add(WEEKDAYS[raw.lower()[:3]])
        else:
            c.add(("weekdays", i), f"{excerpt(raw)} is not a weekday: write mon, tue, wed, thu, fri, sat or sun")
    found: list[tuple[str, str | None]] = []
    raw_h = value.get("holidays")
    entries = raw_h if isinstance(raw_h, list) else [raw_h] if raw_h is not None else []
    for i, h in enumerate(entries):
        ptr: JsonPath = ("holidays", i) if isinstance(raw_h, list) else ("holidays",)
        if not isinstance(h, dict) or not isinstance(h.get("country"), str) or not set(h) <= {"country", "subdivision"}:
            c.add(ptr, "holidays is {country: DE} or {country: DE, subdivision: BY} (or a list of these)")
            continue
        sub = h.get("subdivision")
        if sub is not None and not isinstance(sub, str):
            c.add((*ptr, "subdivision"), "a subdivision is a code such as BY")
            continue
        why = holiday_problem(h["country"], sub)
        if why:
            c.add((*ptr, "subdivision" if sub is not None and "subdivision" in why else "country"), why)
        else:
            found.append((h["country"], sub))
    month_ends = value.get("month_ends", False)
    if not isinstance(month_ends, bool):
        c.add(("month_ends",), "month_ends is true or false")
    return Calendar(name, frozenset(dates), tuple(ranges), frozenset(weekdays), tuple(found), digest=digest,
                    month_ends=month_ends is True)


def _full(raw: str) -> str:
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return next((n for n in names if n.startswith(raw.lower()[:3])), "")


def _list(c: _Check, value: dict[str, Any], key: str) -> list[Any]:
    raw = value.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.add((key,), f"{key} is a list")
        return []
    return raw


def _window_set(c: _Check, name: str, value: dict[str, Any], zone: ZoneLookup) -> WindowSet:
    for key in value:
        if key not in ("description", "windows"):
            c.add((key,), f"unknown field {excerpt(key)}; expected one of: description, windows")
    raw = value.get("windows")
    if not isinstance(raw, list) or not raw:
        c.add(("windows",), "windows is a list of at least one {kind, cron, duration[, timezone]}")
        return WindowSet(name, ())
    out = []
    for i, entry in enumerate(raw):
        problems = window_problems(entry, zone)
        for ptr, message in problems:
            c.add(("windows", i, *ptr), message)
        if not problems:
            out.append(build_window(entry, ZoneInfo("UTC"), f"window {name}", zone))
    return WindowSet(name, tuple(out))


# ---- one window, as written -----------------------------------------------------------------------

WINDOW_FIELDS = ("kind", "cron", "every", "anchor", "duration", "timezone")


def window_problems(entry: Any, zone: ZoneLookup, *, shapes: bool = True) -> list[tuple[JsonPath, str]]:
    """What is wrong with one window as written. `shapes=False`: only what the schema cannot say
    (a schedule's inline windows, whose shapes the schema checks); shared files get every check."""
    if not isinstance(entry, dict):
        return [((), "a window is {kind: allow|deny, cron: EXPR, duration: D[, timezone: ZONE]}")] if shapes else []
    out: list[tuple[JsonPath, str]] = []
    if shapes:
        for key in entry:
            if key not in WINDOW_FIELDS:
                out.append(((key,), f"unknown field {excerpt(key)}; expected one of: {', '.join(WINDOW_FIELDS)}"))
        if entry.get("kind") not in ("allow", "deny"):
            out.append((("kind",), "kind is allow or deny"))
        if ("cron" in entry) == ("every" in entry):
            out.append(((), "a window opens by one of cron or every"))
        if "duration" not in entry:
            out.append(((), "required field 'duration' is missing"))
        if "cron" in entry and not isinstance(entry["cron"], str):
            out.append((("cron",), "cron is a string such as \"0 2 * * *\""))
    if isinstance(entry.get("cron"), str):
        try:
            cron.parse(entry["cron"])
        except cron.CronError as e:
            out.append((("cron",), str(e)))
        except ValueError:
            out.append((("cron",), "not a cron expression"))
    for key in ("duration", "every"):
        if key in entry:
            try:
                if parse_duration(entry[key]) <= timedelta(0):
                    out.append(((key,), f"{key} must be longer than 0"))
            except DurationError as e:
                if shapes:
                    out.append(((key,), str(e)))
    tz = entry.get("timezone")
    if (isinstance(tz, str) and zone(tz) is None) or (shapes and tz is not None and not isinstance(tz, str)):
        out.append((("timezone",), f"unknown time zone {excerpt(tz)}: use an IANA name such as Europe/Berlin"))
    if "anchor" in entry and "every" not in entry:
        out.append((("anchor",), "anchor only applies to `every`"))
    elif "anchor" in entry and _anchor(entry["anchor"]) is None:
        out.append((("anchor",), "anchor is a timestamp such as 2026-01-01T00:00:00Z"))
    return out


def _anchor(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def build_window(entry: dict[str, Any], default_tz: ZoneInfo, label: str, zone: ZoneLookup) -> Window:
    """A window from an entry without problems; `default_tz`: the schedule's zone."""
    tz = zone(entry["timezone"]) if "timezone" in entry else default_tz
    assert tz is not None
    duration = parse_duration(entry["duration"])
    anchor = EPOCH
    if "anchor" in entry:
        anchor = _anchor(entry["anchor"]) or EPOCH
        if anchor.tzinfo is None:
            anchor = anchor.replace(tzinfo=tz)
    if "cron" in entry:
        timing = Timing(name="", tz=tz, cron=cron.parse(entry["cron"]))
        what = f"cron {entry['cron']!r}"
    else:
        timing = Timing(name="", tz=tz, every=parse_duration(entry["every"]), anchor=anchor)
        what = f"every {entry['every']}"
    return Window(entry["kind"], timing, duration, f"{label} ({entry['kind']} {what} for {entry['duration']})")


# ---- a schedule's references ----------------------------------------------------------------------


def references(spec: Mapping[str, Any]) -> list[tuple[str, str, JsonPath]]:
    """(kind, name, pointer) of every library item a schedule spec names."""
    out: list[tuple[str, str, JsonPath]] = []
    for i, w in enumerate(spec.get("windows") or ()):
        if isinstance(w, str):
            out.append((WINDOWS, w, ("windows", i)))
    cal = spec.get("calendar")
    if isinstance(cal, dict):
        for key in ("exclude", "only"):
            for i, n in enumerate(cal.get(key) or ()):
                if isinstance(n, str):
                    out.append((CALENDARS, n, ("calendar", key, i)))
    return out


def rules_of(spec: Mapping[str, Any], tz: ZoneInfo, library: Library, zone: ZoneLookup) -> TimeRules:
    """The resolved rules of a schedule whose references all exist in the library."""
    if "windows" not in spec and "calendar" not in spec:
        return NO_RULES
    windows: list[Window] = []
    for i, w in enumerate(spec.get("windows") or ()):
        if isinstance(w, str):
            windows.extend(library.windows[w].windows)
        else:
            windows.append(build_window(w, tz, f"window {i + 1}", zone))
    p = spec.get("policy") or {}
    cal = spec.get("calendar") or {}
    return TimeRules(tuple(windows), p.get("outside", "skip"), p.get("manual", True),
                     tuple(library.calendars[n] for n in cal.get("exclude", ())),
                     tuple(library.calendars[n] for n in cal.get("only", ())),
                     cal.get("on_excluded", "skip"))




