"use strict";
// Every value from files, the ledger or job output is untrusted: it is only ever set as
// textContent (never innerHTML), and the server's CSP forbids inline script anyway.
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { sort: "name", desc: false, offset: 0, limit: 50, detail: null, openRun: null };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }  // The one way the page builds nodes (values as text only): actions.js and charts.js, which run
  // after this file, use it too.
  window.reconcilerDom = { el };


  function relative(iso) {
    if (!iso) return "";
    const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    if (abs < 2) return "just now";
    const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "m"]
      : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
    return seconds >= 0 ? `in ${n}${unit}` : `${n}${unit} ago`;
  }

  // One format for every time on the page, never the browser's locale or zone: a schedule's
  // times in its zone, everything else in UTC, always labelled ("2026-03-01 02:00:00 Europe/Berlin").
  const formats = new Map();
  function formatter(zone) {
    if (!formats.has(zone)) {
      formats.set(zone, new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }));
    }
    return formats.get(zone);
  }
  function when(iso, zone) {
    let label = zone || "UTC";
    let format;
    try { format = formatter(label); } catch (e) { label = "UTC"; format = formatter(label); }  // a zone this browser lacks
    const parts = {};
    for (const part of format.formatToParts(new Date(iso))) parts[part.type] = part.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${label}`;
  }
  function time(iso, zone) {
    if (!iso) return el("span", { class: "muted" }, "—");
    const attrs = { datetime: iso };
    if (zone && zone !== "UTC") attrs.title = when(iso, "UTC");
    return el("time", attrs, when(iso, zone));
  }
  function timeAndRelative(iso, zone) {
    return iso ? el("span", {}, time(iso, zone), el("div", { class: "muted" }, relative(iso))) : time(null);
  }
  // A commit id shortened as git does; a "+dirty." suffix or a "content:" id is kept whole, so
  // that a rejected working tree never reads as the commit that runs.
  function shortRevision(rev) { return String(rev || "").replace(/^([0-9a-f]{12})[0-9a-f]{28}(?![0-9a-f])/, "$1"); }
  function revision(rev) { return el("code", { class: "rev", title: rev || "" }, shortRevision(rev)); }
  function statusBadge(s) { return el("span", { class: `status ${s}` }, s); }
  function duration(d) { return d === null || d === undefined ? "" : d < 1 ? `${Math.round(d * 1000)} ms` : `${d.toFixed(1)} s`; }

  async function getJSON(url) {
    // actions.js holds the operator's token (sessionStorage), for a server that requires one to read.
    const auth = window.reconcilerAuth ? window.reconcilerAuth() : {};
    const response = await fetch(url, { headers: { Accept: "application/json", ...auth } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function renderStatus(status) {
    const applied = status.applied;
    $("revision").replaceChildren(...(applied.revision
      ? ["revision ", revision(applied.revision), " · applied ", time(applied.at), ` (${relative(applied.at)})`]
      : ["no revision applied yet"]));
    const banner = $("banner");
    banner.replaceChildren();
    const attempted = status.attempted;
    if (attempted.rejected) {
      banner.append(el("strong", { id: "rejected" }, "Revision ", revision(attempted.revision), " was rejected"),
        " · first seen ", time(attempted.at), ` (${relative(attempted.at)}) — ${attempted.error || ""}. `,
        applied.revision ? el("span", { id: "still-running" }, "Revision ", revision(applied.revision), " keeps running.")
          : "No revision is applied yet.");
      const list = el("ul", {});
      for (const p of attempted.problems) list.append(el("li", {}, `${p.path}:${p.line}:${p.column}: ${p.pointer}: ${p.message}`));
      banner.append(list);
    }
    // Fail closed: while the ledger cannot be reached nothing is claimed, so nothing runs.
    if (status.ledger_unreachable) {
      banner.append(el("p", { id: "ledger-unreachable" }, el("strong", {}, "The ledger cannot be reached: no slot is claimed or run. "),
        status.ledger_unreachable));
    }
    if (status.superseded_by) {
      banner.append(el("p", { id: "stale" }, "Another replica applied a newer revision, ", revision(status.superseded_by),
        ": schedules it removed or changed are not run here."));
    }
    banner.classList.toggle("hidden", !banner.childNodes.length);
  }

  function renderReplicas(data) {
    const body = $("replicas").tBodies[0];
    body.replaceChildren();
    for (const r of data.replicas) {
      const age = r.heartbeat_age_seconds;
      const badge = r.state === "alive" ? "succeeded" : r.state === "expired" ? "failed" : "skipped";
      body.append(el("tr", { "data-replica": r.id },
        el("td", { class: "mono" }, r.id), el("td", {}, el("span", { class: `status ${badge}` }, r.state)),
        el("td", {}, age === null || age === undefined ? time(r.last_heartbeat) : `${age.toFixed(1)} s ago`),
        el("td", {}, revision(r.revision)), el("td", {}, r.runs_owned)));
    }
    if (!data.replicas.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No replica.")));
  }

  function renderPools(data) {
    // Named pools (pools.yaml): shown only when there are some.
    const body = $("pools").tBodies[0];
    body.replaceChildren();
    for (const p of data.pools) {
      const full = p.running !== null && p.running >= p.size;
      body.append(el("tr", { "data-pool": p.name },
        el("td", { class: "mono" }, p.name), el("td", {}, p.size),
        el("td", {}, p.running === null ? "unknown" : el("span", { class: `status ${full ? "running" : "succeeded"}` },
          `${p.running}`)),
        el("td", {}, p.queued)));
    }
    $("pools-box").classList.toggle("hidden", !data.pools.length);
  }

  function renderOverview(data) {
    renderStatus(data.status);
    const counts = $("counts");
    counts.replaceChildren();
    for (const [label, value] of [["active", data.counts.active], ["suspended", data.counts.suspended],
      ["completed", data.counts.completed], ["running now", data.running],
      ["waiting to start", data.waiting ?? 0]]) {
      counts.append(el("div", { class: "count", "data-count": label }, el("b", {}, value), el("span", {}, label)));
    }
    const body = $("failures").tBodies[0];
    body.replaceChildren();
    if (!data.recent_failures.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No failures.")));
    for (const r of data.recent_failures) {
      body.append(el("tr", { class: "clickable", onclick: () => { location.hash = `#/schedule/${encodeURIComponent(r.schedule)}/run/${r.id}`; } },
        el("td", {}, time(r.slot)), el("td", {}, r.schedule), el("td", {}, statusBadge(r.status)),
        el("td", {}, r.attempt), el("td", { class: "mono" }, r.error || "")));
    }
  }

  function scheduleQuery() {
    const params = new URLSearchParams({ sort: state.sort, desc: state.desc ? "1" : "0", limit: state.limit, offset: state.offset });
    for (const [id, key] of [["q", "q"], ["label", "label"], ["state", "state"], ["last-status", "last_status"]]) {
      if ($(id).value) params.set(key, $(id).value);
    }
    return `/api/v1/schedules?${params}`;
  }

  function renderSchedules(data) {
    const body = $("schedules").tBodies[0];
    body.replaceChildren();
    for (const s of data.items) {
      const name = el("td", {}, el("a", { href: `#/schedule/${encodeURIComponent(s.name)}` }, s.name));
      if (s.state !== "active") name.append(el("span", { class: "tag" }, s.state));
      if (s.paused) name.append(el("span", { class: "tag paused", title: pausedText(s.paused) }, "paused"));
      for (const [k, v] of Object.entries(s.labels)) name.append(el("span", { class: "tag" }, `${k}=${v}`));
      const last = s.last_run;
      body.append(el("tr", { "data-name": s.name },
        name,
        el("td", {}, s.schedule, s.expression ? el("div", { class: "muted mono" }, s.expression) : null),
        el("td", {}, s.timezone),
        el("td", { class: "next" }, timeAndRelative(s.next, s.timezone),
          s.next_note ? el("span", { class: "muted" }, ` · ${s.next_note}`) : null),
        el("td", { class: "last" }, last ? lastRun(last, s.timezone) : el("span", { class: "muted" }, "never"))));
    }
    const end = Math.min(data.offset + data.items.length, data.total);
    $("page").textContent = data.total ? `${data.offset + 1}–${end} of ${data.total}` : "no schedules match";
    $("prev").disabled = data.offset === 0;
    $("next").disabled = end >= data.total;
    for (const button of document.querySelectorAll("th button[data-sort]")) {
      button.classList.toggle("sorted", button.dataset.sort === state.sort);
      button.classList.toggle("asc", !state.desc);
    }
  }

  function pausedText(p) {
    return `paused by ${p.by}${p.reason ? ": " + p.reason : ""}${p.until ? " (until " + p.until + ")" : " (until resumed)"}`;
  }

  function lastRun(r, zone) {
    const at = r.finished_at || r.started_at || r.slot;
    return el("span", {}, statusBadge(r.status), " ", time(at, zone), el("div", { class: "muted" }, relative(at)));
  }

  async function renderDetail(name) {
    const s = await getJSON(`/api/v1/schedules/${encodeURIComponent(name)}`);
    $("s-name").textContent = s.name;
    $("s-desc").textContent = s.description || "";
    const facts = $("s-facts");
    facts.replaceChildren();
    for (const [k, v] of [["State", s.state], ["Schedule", s.schedule], ["Expression", s.expression || s.schedule],
      ["Time zone", s.timezone], ["Next run", el("span", {}, timeAndRelative(s.next, s.timezone), s.next_note ? el("span", { class: "muted" }, s.next_note) : null)],
      ["Last run", s.last_run ? lastRun(s.last_run, s.timezone) : "never"], ["Source", s.source],
      ...(s.paused ? [["Paused", pausedText(s.paused)]] : [])]) {
      facts.append(el("dt", {}, k), el("dd", {}, v));
    }
    const upcoming = $("s-upcoming");
    upcoming.replaceChildren(...s.upcoming.map((u) => el("li", {}, time(u.slot, s.timezone),
      s.timezone === "UTC" ? null : " · ", s.timezone === "UTC" ? null : time(u.slot, "UTC"),
      u.skipped ? el("span", { class: "muted" }, ` — skipped: ${u.skipped}`) : u.note ? el("span", { class: "muted" }, ` · ${u.note}`) : null)));
    if (!s.upcoming.length) upcoming.append(el("li", { class: "muted" }, "none"));
    $("s-spec").textContent = s.spec_yaml;
    const body = $("s-runs").tBodies[0];
    body.replaceChildren();
    for (const r of s.runs) {
      body.append(el("tr", { class: "clickable", "data-run": r.id, onclick: () => { location.hash = `#/schedule/${encodeURIComponent(name)}/run/${r.id}`; } },
        el("td", {}, time(r.slot, s.timezone)), el("td", {}, statusBadge(r.status)), el("td", {}, duration(r.duration_seconds)),
        el("td", {}, r.attempt), el("td", {}, r.trigger), el("td", {}, r.exit_code ?? r.http_status ?? ""),
        el("td", { class: "mono" }, revision(r.revision))));
    }
    if (!s.runs.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No runs yet.")));
    document.dispatchEvent(new CustomEvent("dashboard:schedule", { detail: s }));  // charts.js draws its pictures, graph.js lists its dependencies
  }

  // What a run used (resource limits): peak memory and CPU time, where its kind measured them.
  function usage(r) {
    const parts = [];
    if (r.peak_memory_bytes != null) parts.push(`peak memory ${(r.peak_memory_bytes / 1048576).toFixed(1)} MiB`);
    if (r.cpu_user_seconds != null) parts.push(`CPU ${r.cpu_user_seconds.toFixed(2)}s user, ${(r.cpu_system_seconds ?? 0).toFixed(2)}s system`);
    return parts.join(" · ");
  }

  async function renderRun(runId) {
    const r = await getJSON(`/api/v1/runs/${runId}`);
    $("output-title").textContent = `Run ${r.id} · ${r.status}${r.error ? ` · ${r.error}` : ""}`;
    $("run-replica").textContent = r.replica ? `ran on replica ${r.replica}` : "never started (no replica ran it)";
    $("output").textContent = r.output || "(no output)";
    $("run-usage").textContent = usage(r);
    $("output-box").classList.remove("hidden");
  }

  async function refresh() {
    try {
      const route = location.hash.match(/^#\/schedule\/([^/]+)(?:\/run\/(\d+))?/);
      const timeline = location.hash.startsWith("#/timeline");  // drawn by charts.js
      const graph = location.hash.startsWith("#/graph");  // drawn by graph.js
      $("overview-view").classList.toggle("hidden", !!route || timeline || graph);
      $("schedule-view").classList.toggle("hidden", !route);
      $("timeline-view").classList.toggle("hidden", !timeline);
      $("graph-view").classList.toggle("hidden", !graph);
      if (graph) {
        renderStatus(await getJSON("/api/v1/status"));
        document.dispatchEvent(new CustomEvent("dashboard:graph"));
      } else if (timeline) {
        renderStatus(await getJSON("/api/v1/status"));
        document.dispatchEvent(new CustomEvent("dashboard:timeline"));
      } else if (route) {
        const status = await getJSON("/api/v1/status");
        renderStatus(status);
        await renderDetail(decodeURIComponent(route[1]));
        if (route[2]) await renderRun(route[2]); else $("output-box").classList.add("hidden");
      } else {
        const [overview, schedules, replicas] = await Promise.all([getJSON("/api/v1/overview"), getJSON(scheduleQuery()),
          getJSON("/api/v1/replicas")]);
        renderOverview(overview);
        renderSchedules(schedules);
        document.dispatchEvent(new CustomEvent("dashboard:schedules", { detail: schedules }));  // the run strips
        renderReplicas(replicas);
        renderPools(await getJSON("/api/v1/pools"));
      }
      $("updated").replaceChildren("updated ", time(new Date().toISOString()));
      document.body.dataset.loaded = "true";
    } catch (error) {
      $("updated").textContent = `update failed: ${error.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    let timer = null;
    const soon = () => { clearTimeout(timer); timer = setTimeout(() => { state.offset = 0; refresh(); }, 200); };
    for (const id of ["q", "label"]) $(id).addEventListener("input", soon);
    for (const id of ["state", "last-status"]) $(id).addEventListener("change", soon);
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    for (const button of document.querySelectorAll("th button[data-sort]")) {
      button.addEventListener("click", () => {
        state.desc = state.sort === button.dataset.sort ? !state.desc : false;
        state.sort = button.dataset.sort;
        refresh();
      });
    }
    $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); refresh(); });
    $("next").addEventListener("click", () => { state.offset += state.limit; refresh(); });
    window.addEventListener("hashchange", refresh);
    refresh();
    setInterval(refresh, 5000);  // no full reload: only the data is fetched again
  });
})();
