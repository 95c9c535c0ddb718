"use strict";
// The dashboard's pictures: run strips on the overview, a schedule's trend charts and countdown, the
// fleet timeline. dashboard.js renders the tables and tells this script, by events on `document`,
// what it rendered; charts are uPlot's (vendor/, from npm), never drawn here. As in dashboard.js,
// every value from files, the ledger or job output is set as textContent, never as markup.
(function () {
  const $ = (id) => document.getElementById(id);
  const charts = {};  // the uPlot instances on the page, by role (read by the browser tests)
  window.reconcilerCharts = charts;
  const COLORS = { ok: "#12b76a", bad: "#d92d20", warn: "#f79009", info: "#2e90fa", skip: "#98a2b3", line: "#175cd3", cpu: "#7a5af8" };

  const { el } = window.reconcilerDom;  // dashboard.js


  // Times as dashboard.js writes them: in a named zone, never the browser's, always labelled.
  function when(iso, zone) {
    const label = zone || "UTC";
    let format;
    try {
      format = new Intl.DateTimeFormat("en-US", { timeZone: label, hourCycle: "h23", year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    } catch (e) { return when(iso, "UTC"); }
    const p = {};
    for (const part of format.formatToParts(new Date(iso))) p[part.type] = part.value;
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${label}`;
  }
  function seconds(d) { return d === null || d === undefined ? "—" : d < 1 ? `${Math.round(d * 1000)} ms` : `${d.toFixed(1)} s`; }
  function exit(c) { return c.exit_code ?? (c.http_status ? `HTTP ${c.http_status}` : "—"); }
  function runHref(name, id) { return `#/schedule/${encodeURIComponent(name)}/run/${id}`; }

  async function getJSON(url) {
    const auth = window.reconcilerAuth ? window.reconcilerAuth() : {};  // actions.js: --read-token-required
    const response = await fetch(url, { headers: { Accept: "application/json", ...auth } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  // ---- run strips ------------------------------------------------------------------------------
  // One request for the whole page of schedules; the last answer is drawn at once on each refresh,
  // so a strip does not blink while the next one is on its way.
  const stripCache = new Map();
  const tip = el("div", { id: "strip-tip", class: "strip-tip hidden", role: "tooltip" });

  function tipText(name, c, zone) {
    return [`${name} · slot ${when(c.slot, zone)}`, `status ${c.status}${c.attempt > 1 ? ` (attempt ${c.attempt})` : ""}`,
      `duration ${seconds(c.duration_seconds)} · exit ${exit(c)}`];
  }
  function showTip(cell) {
    tip.replaceChildren(...cell.tipLines.map((line) => el("div", {}, line)));
    tip.classList.remove("hidden");
    const box = cell.getBoundingClientRect();
    tip.style.left = `${Math.max(4, box.left + window.scrollX - 20)}px`;
    tip.style.top = `${box.bottom + window.scrollY + 6}px`;
  }
  function hideTip() { tip.classList.add("hidden"); }

  function strip(name, cells, zone) {
    const box = el("div", { class: "strip", role: "group", "aria-label": `last ${cells.length} runs of ${name}`,
      "data-cells": String(cells.length) });
    cells.forEach((c, i) => {
      const lines = tipText(name, c, zone);
      const a = el("a", { class: `cell ${c.status}`, href: runHref(name, c.id), "data-run": String(c.id),
        "data-status": c.status, "aria-label": lines.join(", "), tabindex: i === cells.length - 1 ? "0" : "-1" });
      a.tipLines = lines;
      box.append(a);
    });
    if (!cells.length) box.append(el("span", { class: "muted" }, "no runs"));
    return box;
  }

  // The table is rebuilt at each refresh: the run a keyboard user was on keeps the focus.
  let focused = null;  // {name, run} of the focused strip cell, or null
  function refocus() {
    if (!focused || (document.activeElement && document.activeElement !== document.body)) return;
    const row = document.querySelector(`#schedules tbody tr[data-name="${CSS.escape(focused.name)}"]`);
    const cell = row && row.querySelector(`.strip .cell[data-run="${focused.run}"]`);
    if (!cell) return;
    for (const other of cell.parentNode.children) other.tabIndex = -1;
    cell.tabIndex = 0;
    cell.focus();
  }

  function drawStrips(items) {
    hideTip();  // its cell is about to go; the focus, if any, brings it back
    for (const s of items) {
      const row = document.querySelector(`#schedules tbody tr[data-name="${CSS.escape(s.name)}"]`);
      if (!row) continue;
      let td = row.querySelector("td.strip-cell");
      if (!td) { td = el("td", { class: "strip-cell" }); row.append(td); }
      const cells = stripCache.get(s.name);
      td.replaceChildren(cells ? strip(s.name, cells, s.timezone) : el("span", { class: "muted" }, "…"));
    }
    refocus();
  }

  let stripsAsked = 0;
  async function strips(page) {
    const asked = ++stripsAsked;
    drawStrips(page.items);
    if (!page.items.length) return;
    const params = new URLSearchParams(page.items.map((s) => ["name", s.name]));
    const data = await getJSON(`/api/v1/strips?${params}`);
    if (asked !== stripsAsked) return;  // a newer page is on its way
    for (const [name, cells] of Object.entries(data.strips)) stripCache.set(name, cells);
    drawStrips(page.items);
    $("schedules").dataset.strips = "loaded";
  }

  function stripKeys(event) {
    const cell = event.target.closest && event.target.closest(".strip .cell");
    if (!cell || (event.key !== "ArrowLeft" && event.key !== "ArrowRight")) return;
    const next = event.key === "ArrowLeft" ? cell.previousElementSibling : cell.nextElementSibling;
    if (!next) return;
    event.preventDefault();
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  // ---- one schedule: trends, success rates, countdown ---------------------------------------------
  function tzDate(zone) { return (ts) => uPlot.tzDate(new Date(ts * 1e3), zone); }
  // The chart's box may still be empty (hidden by CSS): its parent's width is the one to fill.
  function width(node) { return Math.max(320, Math.min((node.parentNode.clientWidth || 900) - 16, 1360)); }
  // Time axes and legends as the rest of the page writes times: 24-hour, in the chart's named zone.
  function timeAxis(zone) {
    let format;
    try { format = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }); }
    catch (e) { format = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", hourCycle: "h23", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }); }
    const text = (ts) => {
      const p = {};
      for (const part of format.formatToParts(new Date(ts * 1000))) p[part.type] = part.value;
      return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
    };
    return { label: zone, space: 90, values: (u, ticks) => ticks.map(text) };
  }
  function timeSeries(label, zone) { return { label, value: (u, ts) => (ts == null ? "—" : when(new Date(ts * 1000).toISOString(), zone)) }; }
  const marker = (color, label) => ({ label, stroke: color, fill: color, width: 0, paths: () => null,
    points: { show: true, size: 9, stroke: color, fill: color } });

  // A refresh of the same picture only hands uPlot new data; a new zone, range or schedule draws it anew.
  function chart(role, node, opts, data, key) {
    const old = charts[role];
    if (old && old.root.parentNode === node && old.pictureKey === key) {
      old.setData(data);
      return old;
    }
    if (old) old.destroy();
    node.replaceChildren();
    charts[role] = new uPlot({ width: width(node), ...opts }, data, node);
    charts[role].pictureKey = key;
    return charts[role];
  }

  function durationChart(t, node) {
    const x = t.points.map((p) => Date.parse(p.slot) / 1000);
    const data = [x, t.points.map((p) => p.duration_seconds), t.points.map((p) => p.cpu_seconds),
      t.points.map((p) => (p.failed ? p.duration_seconds ?? 0 : null))];
    return chart("duration", node, { height: 220, tzDate: tzDate(t.timezone), title: "Duration and CPU time (s)",
      scales: { x: { time: true } },
      axes: [timeAxis(t.timezone), { label: "seconds" }],
      series: [timeSeries("slot", t.timezone),
        { label: "duration", stroke: COLORS.line, width: 1.5, value: (u, v) => seconds(v), points: { show: true, size: 4 } },
        { label: "CPU (user + system)", stroke: COLORS.cpu, width: 1, value: (u, v) => seconds(v) },
        marker(COLORS.bad, "failed")] }, data, t.name + t.timezone);
  }

  function memoryChart(t, node) {
    const mib = (b) => (b === null || b === undefined ? null : b / 1048576);
    const data = [t.points.map((p) => Date.parse(p.slot) / 1000), t.points.map((p) => mib(p.peak_memory_bytes)),
      t.points.map((p) => (p.failed ? mib(p.peak_memory_bytes) ?? 0 : null))];
    return chart("memory", node, { height: 180, tzDate: tzDate(t.timezone), title: "Peak memory (MiB)",
      scales: { x: { time: true } }, axes: [timeAxis(t.timezone), { label: "MiB" }],
      series: [timeSeries("slot", t.timezone),
        { label: "peak memory", stroke: COLORS.ok, width: 1.5, value: (u, v) => (v == null ? "—" : `${v.toFixed(1)} MiB`),
          points: { show: true, size: 4 } },
        marker(COLORS.bad, "failed")] }, data, t.name + t.timezone);
  }

  function rate(label, r) {
    const text = r.rate === null ? "no ended runs" : `${(r.rate * 100).toFixed(1)} %`;
    return el("div", { class: "count rate", "data-rate": label },
      el("b", {}, text), el("span", {}, `${label}: ${r.succeeded} of ${r.ended} ended runs succeeded`));
  }

  function countdownText(iso) {
    let s = Math.round((Date.parse(iso) - Date.now()) / 1000);
    if (s <= 0) return "due now";
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const pad = (n) => String(n).padStart(2, "0");
    return `in ${d ? `${d}d ` : ""}${pad(h)}:${pad(m)}:${pad(s)}`;
  }
  function tick() {
    for (const node of document.querySelectorAll("[data-countdown]")) node.textContent = countdownText(node.dataset.countdown);
  }

  function upcomingList(t) {
    const list = el("ol", { id: "p-upcoming", class: "upcoming" });
    let first = true;
    for (const u of t.upcoming) {
      const li = el("li", { "data-slot": u.slot }, el("time", { datetime: u.fires }, when(u.fires, t.timezone)), " ");
      if (u.skipped) { li.classList.add("skipped"); li.append(el("span", { class: "muted" }, `skipped: ${u.skipped}`)); }
      else {
        li.append(el("span", { class: first ? "countdown next" : "countdown", "data-countdown": u.fires }, countdownText(u.fires)));
        if (u.note) li.append(el("span", { class: "muted" }, ` · ${u.note}`));
        first = false;
      }
      list.append(li);
    }
    if (!t.upcoming.length) list.append(el("li", { class: "muted" }, "no next fire time"));
    return list;
  }

  // The dependency graph of a schedule goes here once schedules can depend on each other: the API
  // already answers `graph` (null until then), and #p-graph stays hidden while there is none.
  function graph(data, node) {
    node.classList.toggle("hidden", !data);
  }

  let shownSchedule = null;
  async function pictures(name) {
    const box = $("s-pictures");
    const t = await getJSON(`/api/v1/schedules/${encodeURIComponent(name)}/trends`);
    if (shownSchedule !== name) {
      for (const role of ["duration", "memory"]) if (charts[role]) { charts[role].destroy(); delete charts[role]; }
      shownSchedule = name;
    }
    $("p-rates").replaceChildren(rate("24 h", t.success["24h"]), rate("7 d", t.success["7d"]));
    $("p-next").replaceChildren(upcomingList(t));
    const empty = !t.points.length;
    $("p-empty").classList.toggle("hidden", !empty);
    $("p-duration").classList.toggle("hidden", empty);
    $("p-memory").classList.toggle("hidden", empty || !t.points.some((p) => p.peak_memory_bytes !== null));
    if (!empty) {
      durationChart(t, $("p-duration"));
      if (t.points.some((p) => p.peak_memory_bytes !== null)) memoryChart(t, $("p-memory"));
    }
    graph(t.graph, $("p-graph"));
    box.dataset.points = String(t.points.length);
    box.dataset.loaded = "true";
  }

  // ---- the fleet timeline ------------------------------------------------------------------------
  const timelineState = { key: null, at: 0 };

  function timelineQuery() {
    const params = new URLSearchParams({ hours: $("t-hours").value, zone: $("t-zone").value.trim() });
    const from = $("t-from").value;
    if (from) params.set("from", `${from.length === 16 ? `${from}:00` : from}Z`);  // the input may carry seconds
    const q = $("t-q").value.trim();
    if (q) params.set("q", q);
    return `/api/v1/timeline?${params}`;
  }

  function timelineChart(t, node) {
    const slots = [...t.slots].sort((a, b) => Date.parse(a.fires) - Date.parse(b.fires));
    const pick = (test) => slots.map((s) => (test(s) ? s.lane : null));
    const data = [slots.map((s) => Date.parse(s.fires) / 1000), pick((s) => !s.skipped && !s.heavy),
      pick((s) => !!s.skipped), pick((s) => s.heavy && s.overlap === 0), pick((s) => s.heavy && s.overlap > 0)];
    const zone = t.zone || "UTC";
    const lane = (u, v) => (v == null ? "—" : t.lanes[v] ? t.lanes[v].schedule : "");
    const dot = (color, label, size) => ({ label, stroke: color, fill: color, paths: () => null, value: lane,
      points: { show: true, size, stroke: color, fill: color } });
    const height = Math.max(160, Math.min(40 + t.lanes.length * 12, 640));
    return chart("timeline", node, { height, tzDate: tzDate(zone), title: `Slots by schedule (axis in ${zone})`,
      scales: { x: { time: true, range: [Date.parse(t.from) / 1000, Date.parse(t.to) / 1000] },
        y: { range: [-1, Math.max(t.lanes.length, 1)] } },
      axes: [timeAxis(zone), { label: "schedule", size: 140, values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) && t.lanes[v] ? t.lanes[v].schedule.slice(0, 18) : "")) }],
      series: [timeSeries("fires", zone), dot(COLORS.info, "runs", 5), dot(COLORS.skip, "skipped", 5),
        dot(COLORS.warn, "heavy", 7), dot(COLORS.bad, "heavy, overlapping", 8)] }, data, JSON.stringify([t.from, t.to, t.zone, t.lanes.length]));
  }

  function overlapChart(t, node) {
    const series = t.overlaps.series;
    if (!series.length) {
      if (charts.overlap) { charts.overlap.destroy(); delete charts.overlap; }
      node.replaceChildren(el("p", { class: "muted" }, `No heavy job (median run ≥ ${t.heavy_seconds} s) in this range.`));
      return;
    }
    const zone = t.zone || "UTC";
    chart("overlap", node, { height: 140, tzDate: tzDate(zone), title: "Heavy jobs running at once (expected)",
      scales: { x: { time: true, range: [Date.parse(t.from) / 1000, Date.parse(t.to) / 1000] } },
      axes: [timeAxis(zone), { label: "runs" }],
      series: [timeSeries("time", zone), { label: "heavy runs", stroke: COLORS.warn, fill: "rgba(247,144,9,0.15)",
        paths: uPlot.paths.stepped({ align: 1 }) }] }, [series.map((p) => p[0]), series.map((p) => p[1])],
      JSON.stringify([t.from, t.to, t.zone]));
  }

  function timelineTables(t) {
    const zoneOf = (s) => t.zone || (t.lanes[s.lane] ? t.lanes[s.lane].timezone : "UTC");
    const skipped = t.slots.filter((s) => s.skipped);
    const body = $("t-skipped").tBodies[0];
    body.replaceChildren(...skipped.slice(0, 500).map((s) => el("tr", { "data-schedule": s.schedule },
      el("td", {}, el("time", { datetime: s.fires }, when(s.fires, zoneOf(s)))),
      el("td", {}, el("a", { href: `#/schedule/${encodeURIComponent(s.schedule)}` }, s.schedule)),
      el("td", {}, s.skipped))));
    if (!skipped.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No slot in this range is skipped.")));
    const more = skipped.length - 500;
    $("t-skipped-more").textContent = more > 0 ? `and ${more} more skipped slots` : "";
  }

  async function timeline(force) {
    const url = timelineQuery();
    // The range moves with the clock: computed again each minute, or at once when a control changes.
    if (!force && url === timelineState.key && Date.now() - timelineState.at < 60000) return;
    timelineState.key = url;
    timelineState.at = Date.now();
    const t = await getJSON(url);
    if (url !== timelineState.key) return;
    const view = $("timeline-view");
    const c = t.counts;
    $("t-summary").replaceChildren(`${c.slots} slots of ${t.lanes.length} schedules from ${when(t.from, t.zone || "UTC")} to `,
      `${when(t.to, t.zone || "UTC")}; ${c.skipped} skipped, ${c.heavy} heavy.`);
    $("t-truncated").textContent = t.truncated ? `Not every slot is shown: ${t.truncated}.` : "";
    $("t-truncated").classList.toggle("hidden", !t.truncated);
    const warn = t.overlaps.peak > 1;
    $("t-overlap").textContent = warn ? `Overlap: up to ${t.overlaps.peak} heavy jobs are expected to run at once, first at ${when(t.overlaps.peak_at, t.zone || "UTC")}.` : "";
    $("t-overlap").classList.toggle("hidden", !warn);
    timelineChart(t, $("t-chart"));
    overlapChart(t, $("t-overlaps"));
    timelineTables(t);
    Object.assign(view.dataset, { slots: String(c.slots), skipped: String(c.skipped), lanes: String(t.lanes.length), loaded: "true" });
  }

  function fail(where, error) { $("updated").textContent = `${where} failed: ${error.message}`; }

  document.addEventListener("dashboard:schedules", (e) => { strips(e.detail).catch((err) => fail("strips", err)); });
  document.addEventListener("dashboard:schedule", (e) => { pictures(e.detail.name).catch((err) => fail("charts", err)); });
  document.addEventListener("dashboard:timeline", () => { timeline(false).catch((err) => fail("timeline", err)); });
  document.addEventListener("DOMContentLoaded", () => {
    document.body.append(tip);
    const table = $("schedules");
    table.addEventListener("mouseover", (e) => { const c = e.target.closest(".strip .cell"); if (c) showTip(c); });
    table.addEventListener("mouseout", (e) => { if (e.target.closest(".strip .cell")) hideTip(); });
    table.addEventListener("focusin", (e) => {
      const c = e.target.closest(".strip .cell");
      if (c) showTip(c);
      focused = c ? { name: c.closest("tr").dataset.name, run: c.dataset.run } : null;
    });
    // Focus that moves elsewhere on the page ends it; focus lost with a rebuilt row does not.
    document.addEventListener("focusin", (e) => { if (!e.target.closest || !e.target.closest("#schedules")) focused = null; });
    document.addEventListener("mousedown", (e) => { if (!e.target.closest || !e.target.closest(".strip")) focused = null; });
    table.addEventListener("focusout", hideTip);
    table.addEventListener("keydown", stripKeys);
    const zones = $("t-zones");
    for (const z of (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"])) zones.append(el("option", { value: z }));
    let timer = null;
    const soon = () => { clearTimeout(timer); timer = setTimeout(() => timeline(true).catch((err) => fail("timeline", err)), 300); };
    for (const id of ["t-hours", "t-zone", "t-from", "t-q"]) { $(id).addEventListener("change", soon); $(id).addEventListener("input", soon); }
    $("t-controls").addEventListener("submit", (e) => e.preventDefault());
    setInterval(tick, 1000);
  });
})();
