"""What the dashboard's pictures show: run strips, a schedule's trends, the fleet's timeline.

Functions of one `Live` value and the ledger, like service/views.py, and as careful about cost:
the strips of a whole page come from one ledger query that reads at most N rows per schedule, and
the timeline computes a bounded number of slots (the answer says when it stopped early). The HTTP
routes are at the end; service/http.py mounts them. Nothing here changes anything.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reconciler.core import policy
from reconciler.core.model import Schedule
from reconciler.core.policy import RunStatus
from reconciler.ledger.base import Ledger, RunRecord
from reconciler.service.live import Live
from reconciler.service.views import active_pauses, iso

if TYPE_CHECKING:
    from starlette.routing import Route

    from reconciler.service.http import Site

STRIP_RUNS, STRIP_MAX = 40, 50  # GitHub Actions and Airflow's grid show a few dozen
STRIP_NAMES = 1000  # the largest page of /api/v1/schedules
TREND_RUNS, TREND_MAX = 200, 1000
TIMELINE_SLOTS, TIMELINE_MAX = 5000, 20000
TIMELINE_HOURS, TIMELINE_MAX_HOURS = 24, 24 * 7
HEAVY_SECONDS = 60
UPCOMING = 10
# A run that started and ended; skipped, missed and cancelled runs never ran their command, and a
# running one has no outcome yet, so none of them moves the success rate.
ENDED = frozenset((RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.INTERRUPTED,
                   RunStatus.ABANDONED))


def _seconds(r: RunRecord) -> float | None:
    return r.duration.total_seconds() if r.duration is not None else None


def cell(r: RunRecord) -> dict[str, Any]:
    """One run in a strip: what its tooltip says and where a click goes."""
    return {"id": r.id, "slot": iso(r.slot), "status": r.status, "attempt": r.attempt, "trigger": r.cause,
            "duration_seconds": _seconds(r), "exit_code": r.exit_code, "http_status": r.http_status}


def strips(live: Live, ledger: Ledger, names: Iterable[str], per: int = STRIP_RUNS) -> dict[str, Any]:
    """The last `per` runs of each named schedule of the applied revision, oldest first (a strip
    reads left to right), in one ledger query. Names the revision does not have are left out."""
    wanted = sorted({n for n in names if n in live.schedules})
    found = ledger.recent_runs(wanted, per) if wanted else {}
    return {"runs": per, "strips": {n: [cell(r) for r in reversed(found.get(n, []))] for n in wanted}}


def _rate(counts: dict[RunStatus, int]) -> dict[str, Any]:
    ended = sum(n for s, n in counts.items() if s in ENDED)
    ok = counts.get(RunStatus.SUCCEEDED, 0)
    return {"succeeded": ok, "ended": ended, "rate": ok / ended if ended else None,
            "counts": {str(s): n for s, n in sorted(counts.items())}}


def upcoming(live: Live, ledger: Ledger, s: Schedule, now: datetime, count: int = UPCOMING) -> list[dict[str, Any]]:
    """The next slots with what the time rules and a pause do to each (views.schedule's, longer)."""
    if live.state_of(s, live.next_fire_times()) != policy.ScheduleState.ACTIVE:
        return []
    pause = active_pauses(ledger, now).get(s.name)
    out = []
    for t in s.timing.slots(now, count):
        note = policy.slot_note(s, t) if not s.rules.empty else ""
        skipped = policy.skipped_by_pause(pause, t) or (note.removeprefix("skipped: ") if note.startswith(
            "skipped") else None)
        out.append({"slot": iso(t), "fires": iso(s.timing.fire_time(t)), "skipped": skipped,
                    "note": note or None})
    return out


def trends(live: Live, ledger: Ledger, name: str, *, now: datetime, runs: int = TREND_RUNS) -> dict[str, Any] | None:
    """A schedule's recent runs as chart points (duration, peak memory, CPU; failures marked), its
    success rates over 24 h and 7 d, and its next fire times."""
    s = live.schedules.get(name)
    if s is None:
        return None
    recent = sorted(ledger.runs(name, limit=runs), key=lambda r: (r.slot, r.id))
    points = [{**cell(r), "failed": r.status in policy.FAILING,
               "peak_memory_bytes": r.peak_memory,
               "cpu_seconds": (r.cpu_user or 0) + (r.cpu_system or 0) if r.cpu_user is not None else None}
              for r in recent]
    return {"name": name, "timezone": s.timing.tz.key, "now": iso(now), "points": points,
            "success": {"24h": _rate(ledger.status_counts(name, now - timedelta(hours=24))),
                        "7d": _rate(ledger.status_counts(name, now - timedelta(days=7)))},
            "upcoming": upcoming(live, ledger, s, now),
            # The dependency graph will be drawn here once schedules can depend on each other.
            "graph": None}


def _zone_text(t: datetime, zone: ZoneInfo) -> str:
    local = t.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {zone.key}"


def parse_zone(text: str) -> ZoneInfo | None:
    """`zone`: empty for each schedule's own, or an IANA name."""
    if not text:
        return None
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a directory, a bad path
        raise ValueError(f"zone must be an IANA time zone such as Europe/Berlin, not {text!r}") from e


def timeline(live: Live, ledger: Ledger, *, start: datetime, hours: int = TIMELINE_HOURS, zone: ZoneInfo | None = None,
             q: str = "", limit: int = TIMELINE_SLOTS, heavy_seconds: int = HEAVY_SECONDS) -> dict[str, Any]:
    """Every slot of the active schedules that fires in [start, start + hours), at most `limit`
    in all (schedules in name order; `truncated` says where it stopped), each with why it will be
    skipped (a window, a calendar, a pause) and whether it is heavy: its schedule's median run took
    at least `heavy_seconds`. Heavy runs are laid out as intervals of that median, and `overlaps`
    counts how many run at once."""
    end = start + timedelta(hours=hours)
    nxt = live.next_fire_times()
    chosen = [s for _, s in sorted(live.schedules.items())
              if live.state_of(s, nxt) == policy.ScheduleState.ACTIVE
              and (not q or q.lower() in s.name or q.lower() in s.description.lower())]
    pauses = active_pauses(ledger, start)
    slots: list[dict[str, Any]] = []
    lanes: list[dict[str, Any]] = []
    truncated: str | None = None
    for i, s in enumerate(chosen):
        if len(slots) >= limit:
            truncated = (f"stopped at {limit} slots: {len(chosen) - i} of {len(chosen)} schedules not shown; "
                         "narrow the range or the search")
            break
        pause = pauses.get(s.name)
        lane = len(lanes)
        shown = 0
        for t in s.timing.slots(start - timedelta(microseconds=1), limit - len(slots) + 1):
            fires = s.timing.fire_time(t)
            if fires >= end:
                break
            if len(slots) >= limit:
                truncated = f"stopped at {limit} slots, within {s.name}: narrow the range or the search"
                break
            note = policy.slot_note(s, t) if not s.rules.empty else ""
            skipped = policy.skipped_by_pause(pause, t) or (
                note.removeprefix("skipped: ") if note.startswith("skipped") else None)
            slots.append({"lane": lane, "schedule": s.name, "slot": iso(t), "fires": iso(fires),
                          "local": _zone_text(fires, zone or s.timing.tz), "skipped": skipped,
                          "note": note or None, "heavy": False, "overlap": 0})
            shown += 1
        if shown:
            lanes.append({"schedule": s.name, "timezone": s.timing.tz.key, "slots": shown, "heavy": False,
                          "typical_seconds": None})
        if truncated:
            break
    # The expected length of a run: the median of its schedule's last few, in one query, for the
    # schedules shown only (reading every schedule's would cost more than the slots themselves).
    recent = ledger.recent_runs([lane["schedule"] for lane in lanes], 10) if lanes else {}
    typical = {n: statistics.median(d) for n, rs in recent.items()
               if (d := [x for r in rs if (x := _seconds(r)) is not None])}
    for row in lanes:
        row["typical_seconds"] = length = typical.get(row["schedule"])
        row["heavy"] = length is not None and length >= heavy_seconds
    for item in slots:
        item["heavy"] = lanes[item["lane"]]["heavy"] and item["skipped"] is None
    overlaps = _overlaps([x for x in slots if x["heavy"]], typical)
    return {"from": iso(start), "to": iso(end), "zone": zone.key if zone else None, "limit": limit,
            "heavy_seconds": heavy_seconds, "truncated": truncated, "lanes": lanes, "slots": slots,
            "counts": {"slots": len(slots), "skipped": sum(x["skipped"] is not None for x in slots),
                       "heavy": sum(x["heavy"] for x in slots)},
            "overlaps": overlaps}


def _overlaps(heavy: list[dict[str, Any]], typical: dict[str, float]) -> dict[str, Any]:
    """How many heavy runs are expected at once: a step series over time, its peak, and on each heavy
    slot how many others it overlaps (a sweep over sorted starts and ends)."""
    spans = [(datetime.fromisoformat(x["fires"]), typical[x["schedule"]], x) for x in heavy]
    starts = sorted(t for t, _, _ in spans)
    ends = sorted(t + timedelta(seconds=d) for t, d, _ in spans)
    for t, d, x in spans:
        # those that start before this one ends, less those that ended before it started, less itself
        x["overlap"] = bisect.bisect_left(starts, t + timedelta(seconds=d)) - bisect.bisect_right(ends, t) - 1
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends], key=lambda e: (e[0], e[1]))
    series: list[list[float]] = []
    running = peak = 0
    peak_at: datetime | None = None
    for t, step in events:
        running += step
        series.append([t.timestamp(), running])
        if running > peak:
            peak, peak_at = running, t
    return {"peak": peak, "peak_at": iso(peak_at), "series": series}


# ---- HTTP ---------------------------------------------------------------------------------------------

VENDOR = {"/vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript"),
          "/vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css"),
          "/charts.js": ("charts.js", "text/javascript"), "/charts.css": ("charts.css", "text/css")}


def _instant(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None or not datetime(1970, 1, 2, tzinfo=UTC) <= t <= datetime(9000, 1, 1, tzinfo=UTC):
        raise ValueError("from must be an RFC 3339 time with an offset, e.g. 2026-03-01T00:00:00Z")
    return t.astimezone(UTC)


def routes(site: Site) -> list[Route]:
    import asyncio

    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from reconciler.service.http import BadRequest, _asset, _int

    assets = {path: (_asset(name), media) for path, (name, media) in VENDOR.items()}

    def asset(path: str) -> Route:
        body, media = assets[path]

        async def serve(_: Request) -> Response:
            return Response(body, media_type=media)
        return Route(path, serve)

    async def strip(request: Request) -> Response:
        names = request.query_params.getlist("name")
        if len(names) > STRIP_NAMES:
            raise BadRequest(f"at most {STRIP_NAMES} names")
        per = _int(request, "runs", STRIP_RUNS, 1, STRIP_MAX)
        return JSONResponse(await asyncio.to_thread(strips, site.live(), site.ledger, names, per))

    async def trend(request: Request) -> Response:
        runs = _int(request, "runs", TREND_RUNS, 1, TREND_MAX)
        data = await asyncio.to_thread(trends, site.live(), site.ledger, request.path_params["name"],
                                       now=site.clock(), runs=runs)
        if data is None:
            return JSONResponse({"error": "no such schedule"}, status_code=404)
        return JSONResponse(data)

    async def fleet(request: Request) -> Response:
        p = request.query_params
        try:
            start = _instant(p["from"]) if p.get("from") else site.clock()
            zone = parse_zone(p.get("zone", ""))
        except ValueError as e:
            raise BadRequest(str(e)) from None
        data = await asyncio.to_thread(
            timeline, site.live(), site.ledger, start=start, zone=zone, q=p.get("q", "").strip(),
            hours=_int(request, "hours", TIMELINE_HOURS, 1, TIMELINE_MAX_HOURS),
            limit=_int(request, "limit", TIMELINE_SLOTS, 1, TIMELINE_MAX),
            heavy_seconds=_int(request, "heavy_seconds", HEAVY_SECONDS, 0, 366 * 86400))
        return JSONResponse(data)

    return [*(asset(path) for path in VENDOR), Route("/api/v1/strips", strip),
            Route("/api/v1/schedules/{name}/trends", trend), Route("/api/v1/timeline", fleet)]
