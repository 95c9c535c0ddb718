"use strict";
// Operator actions, the activity list, and a schedule's changes interleaved with its runs.
//
// The token: the operator pastes it into the field at the top. It is kept in sessionStorage only
// (this tab, gone when the tab closes; never localStorage, a cookie or a URL) and sent only as an
// `Authorization: Bearer` header. Actions need that header, which a page of another site cannot
// make the browser send, so there is no cross-site request forgery to guard against with cookies.
// Every value from the ledger, git or a token's name is set as textContent, never as markup.
(function () {
  const KEY = "reconciler.token";
  const $ = (id) => document.getElementById(id);
  const stored = () => { try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } };
  const auth = () => { const t = stored(); return t ? { Authorization: `Bearer ${t}` } : {}; };
  window.reconcilerAuth = auth;  // dashboard.js sends it with each read (--read-token-required)

  const me = { token: null, readOnly: null, unreadable: false };
  let shownSchedule = null;

  const { el } = window.reconcilerDom;  // dashboard.js


  function utc(iso) {  // the dashboard's one format: "2026-03-01 02:00:00 UTC"
    if (!iso) return el("span", { class: "muted" }, "—");
    return el("time", { datetime: iso }, `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`);
  }

  async function call(method, url, body) {
    const headers = { Accept: "application/json", ...auth() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  // ---- the token and what it may do ---------------------------------------------------------------

  async function learn() {
    const status = await call("GET", "/api/v1/status");
    me.unreadable = status.status === 401;
    if (status.ok) me.readOnly = status.data.read_only;
    me.token = null;
    if (stored()) {
      const who = await call("GET", "/api/v1/token");
      me.token = who.ok ? who.data : { invalid: true };
    }
    renderTokenBar();
    applyPermissions();
  }

  function whyNot() {
    if (me.readOnly) return "Read-only: the server was started without an operate token (--token-file).";
    if (!stored()) return "Paste an operate token above to act.";
    if (!me.token || me.token.invalid) return "The token was not accepted by the server.";
    if (me.token.role !== "operate") return `The token ${me.token.name} may only read: actions need an operate token.`;
    return null;
  }

  function renderTokenBar() {
    const bar = $("token-bar");
    if (!bar) return;
    bar.replaceChildren();
    if (stored()) {
      const label = me.token && !me.token.invalid ? `token ${me.token.name} (${me.token.role})` : "token not accepted";
      bar.append(el("span", { id: "token-name" }, label), " ",
        el("button", { type: "button", id: "token-forget", onclick: () => { sessionStorage.removeItem(KEY); refreshAll(); } }, "Forget"));
      return;
    }
    const input = el("input", { type: "password", id: "token-input", placeholder: "operator token", "aria-label": "Token",
      autocomplete: "off" });
    const use = () => { if (input.value.trim()) { sessionStorage.setItem(KEY, input.value.trim()); refreshAll(); } };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") use(); });
    bar.append(input, " ", el("button", { type: "button", id: "token-use", onclick: use }, "Use token"));
    if (me.unreadable) bar.append(el("span", { class: "why" }, " this server requires a token to read"));
  }

  function applyPermissions() {
    const why = whyNot();
    for (const button of document.querySelectorAll("button[data-action]")) {
      const waiting = button.dataset.needs === "preview" && !button.dataset.ready;
      button.disabled = !!why || waiting;
      button.title = why || (waiting ? "Run the dry run first." : "");
    }
    for (const note of document.querySelectorAll(".why-not")) {
      note.textContent = why || "";
      note.classList.toggle("hidden", !why);
    }
  }

  function say(id, text, bad) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle("bad", !!bad);
  }

  function failure(r) { return `refused (${r.status}): ${r.data && r.data.error ? r.data.error : "no answer"}`; }

  // ---- one schedule: trigger, pause, resume, backfill ----------------------------------------------

  function expiry(text) {  // "2h" is a duration; "2026-12-01T08:00:00Z" an instant
    const value = text.trim();
    if (!value) return {};
    return /^\d{4}-\d\d-\d\d/.test(value) ? { until: value } : { for: value };
  }

  function renderScheduleActions(name) {
    const box = $("s-actions");
    if (!box) return;
    const path = `/api/v1/schedules/${encodeURIComponent(name)}`;
    const reason = el("input", { id: "a-reason", type: "text", placeholder: "reason", "aria-label": "Reason" });
    const until = el("input", { id: "a-expiry", type: "text", placeholder: "expiry: 2h, or 2026-12-01T08:00:00Z; empty: until resumed",
      "aria-label": "Expiry", class: "wide" });
    const from = el("input", { id: "a-from", type: "text", placeholder: "from 2026-11-01T00:00:00Z", "aria-label": "Backfill from" });
    const to = el("input", { id: "a-to", type: "text", placeholder: "to 2026-11-02T00:00:00Z", "aria-label": "Backfill to" });
    const planList = el("ul", { id: "a-plan", class: "plan" });
    const confirm = el("button", { type: "button", id: "a-backfill", "data-action": "backfill", "data-needs": "preview" }, "Run backfill");
    const unready = () => { delete confirm.dataset.ready; planList.replaceChildren(); applyPermissions(); };
    from.addEventListener("input", unready);
    to.addEventListener("input", unready);

    async function act(label, url, body, after) {
      say("a-result", `${label}…`);
      const r = await call("POST", url, body);
      if (!r.ok) { say("a-result", `${label}: ${failure(r)}`, true); return null; }
      say("a-result", after(r.data));
      refreshSchedule(name);
      return r.data;
    }

    const trigger = el("button", { type: "button", id: "a-trigger", "data-action": "trigger", onclick: () =>
      act("Run now", `${path}/trigger`, reason.value ? { reason: reason.value } : {}, () => "Run started.") }, "Run now");
    const pause = el("button", { type: "button", id: "a-pause", "data-action": "pause", onclick: () =>
      act("Pause", `${path}/pause`, { reason: reason.value, ...expiry(until.value) },
        (d) => `Paused${d.until ? " until " + d.until : " until resumed"}.`) }, "Pause");
    const resume = el("button", { type: "button", id: "a-resume", "data-action": "resume", onclick: () =>
      act("Resume", `${path}/resume`, reason.value ? { reason: reason.value } : {},
        (d) => d.was_paused ? "Resumed." : "It was not paused.") }, "Resume");
    const dry = el("button", { type: "button", id: "a-dry", "data-action": "dry-run", onclick: async () => {
      unready();
      const d = await act("Backfill dry run", `${path}/backfill`, { from: from.value.trim(), to: to.value.trim(), dry_run: true },
        (data) => `Dry run: ${data.slots.filter((s) => s.plan === "run").length} of ${data.slots.length} slots would run.`);
      if (!d) return;
      planList.replaceChildren(...d.slots.map((s) => el("li", { "data-plan": s.plan }, utc(s.slot), ` · ${s.plan}`,
        s.detail ? ` · ${s.detail}` : "")));
      if (d.slots.some((s) => s.plan === "run")) confirm.dataset.ready = "1";
      confirm.textContent = `Run backfill (${d.slots.filter((s) => s.plan === "run").length} slots)`;
      applyPermissions();
    } }, "Dry run");
    confirm.addEventListener("click", async () => {
      unready();
      await act("Backfill", `${path}/backfill`, { from: from.value.trim(), to: to.value.trim(), reason: reason.value },
        (data) => `Backfill started: ${data.slots.filter((s) => s.plan === "run").length} slots.`);
    });

    box.replaceChildren(el("section", { class: "actions", "aria-label": "Actions" },
      el("h3", {}, "Actions"),
      el("p", { class: "why-not muted hidden", id: "a-why" }),
      el("div", { class: "row" }, reason, until),
      el("div", { class: "row" }, trigger, pause, resume),
      el("div", { class: "row" }, from, to, dry, confirm),
      planList,
      el("p", { id: "a-result", role: "status" })));
    applyPermissions();
  }

  // A schedule's git changes, operators' actions and runs, newest first: "it started failing right
  // after commit abc by Dana, which changed the timeout from 10m to 1m" is what this is for.
  function fieldText(f) {
    const v = (x) => x === null || x === undefined ? "(absent)" : JSON.stringify(x);
    return `${f.path}: ${v(f.old)} → ${v(f.new)}`;
  }

  async function refreshSchedule(name) {
    const box = $("s-timeline");
    if (!box) return;
    const q = encodeURIComponent(name);
    const [runs, history, acts] = await Promise.all([call("GET", `/api/v1/runs?schedule=${q}&limit=100`),
      call("GET", `/api/v1/schedules/${q}/history?limit=100`), call("GET", `/api/v1/activity?schedule=${q}&limit=100`)]);
    const rows = [];
    for (const r of runs.ok ? runs.data.items : []) rows.push({ at: r.started_at || r.slot, kind: "run", item: r });
    for (const c of history.ok ? history.data.changes : []) rows.push({ at: c.applied_at, kind: "change", item: c });
    for (const a of acts.ok ? acts.data.items : []) rows.push({ at: a.at, kind: "action", item: a });
    rows.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
    // Oldest first, to say of each change how the runs went on either side of it.
    let lastRun = null;
    const changes = [];
    for (const row of rows) {
      if (row.kind === "run") {
        lastRun = row.item.status;
        for (const c of changes.splice(0)) c.after = row.item.status;
      } else if (row.kind === "change") {
        row.before = lastRun;
        changes.push(row);
      }
    }
    rows.reverse();
    const body = el("tbody");
    for (const row of rows.slice(0, 150)) {
      let what;
      let detail;
      if (row.kind === "run") {
        const r = row.item;
        what = el("span", {}, "run ", el("span", { class: `status ${r.status}` }, r.status));
        detail = el("span", {}, `${r.trigger} · attempt ${r.attempt}`,
          r.exit_code !== null && r.exit_code !== undefined ? ` · exit ${r.exit_code}` : "", r.error ? ` · ${r.error}` : "");
      } else if (row.kind === "change") {
        const c = row.item;
        what = el("span", { class: "change-mark" }, `${c.action} in git`);
        const by = c.commit ? el("span", {}, "commit ", el("code", { class: "rev" }, c.commit.sha.slice(0, 12)),
          ` by ${c.commit.author}: ${c.commit.subject}`) : el("span", {}, "revision ", el("code", { class: "rev" }, c.revision));
        const ok = (s) => s === "succeeded";
        const note = row.before && row.after && ok(row.before) && !ok(row.after)
          ? el("div", { class: "turn" }, `runs went from ${row.before} to ${row.after} right after this change`) : null;
        detail = el("span", {}, by, el("ul", { class: "fields" }, ...c.fields.map((f) => el("li", { class: "mono" }, fieldText(f)))), note);
      } else {
        const a = row.item;
        what = el("span", { class: "action-mark" }, a.action.replace("_", " "));
        detail = el("span", {}, `by ${a.who}`, a.reason ? ` · ${a.reason}` : "");
      }
      body.append(el("tr", { "data-kind": row.kind }, el("td", {}, utc(row.at)), el("td", {}, what), el("td", {}, detail)));
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "Nothing yet.")));
    box.replaceChildren(el("h3", {}, "Changes, actions and runs"),
      el("table", { id: "s-history", class: "runs" },
        el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "What"), el("th", {}, "Detail"))), body));
  }

  // ---- the overview: bulk pause and resume, the activity list ---------------------------------------

  function renderOverviewPanel() {
    const box = $("operator-overview");
    if (!box || box.dataset.built) return;
    box.dataset.built = "1";
    const selector = el("input", { id: "b-selector", type: "text", placeholder: "label selector: team=data,tier=1", "aria-label": "Selector" });
    const reason = el("input", { id: "b-reason", type: "text", placeholder: "reason", "aria-label": "Bulk reason" });
    const until = el("input", { id: "b-expiry", type: "text", placeholder: "expiry: 2h, or an RFC 3339 time", "aria-label": "Bulk expiry" });
    const list = el("ul", { id: "b-list" });
    const what = el("p", { id: "b-what" });
    const confirm = el("button", { type: "button", id: "b-confirm", "data-action": "bulk", "data-needs": "preview" }, "Confirm");
    const cancel = el("button", { type: "button", id: "b-cancel" }, "Cancel");
    const step = el("div", { id: "b-step", class: "confirm hidden" }, what, list, confirm, " ", cancel);
    let pending = null;
    const reset = () => { pending = null; delete confirm.dataset.ready; step.classList.add("hidden"); applyPermissions(); };
    cancel.addEventListener("click", () => { reset(); say("b-result", "Cancelled."); });
    for (const input of [selector, reason, until]) input.addEventListener("input", reset);

    function body(kind) {
      const b = { selector: selector.value.trim(), reason: reason.value };
      return kind === "pause" ? { ...b, ...expiry(until.value) } : b;
    }
    async function preview(kind) {
      reset();
      const r = await call("POST", `/api/v1/bulk/${kind}`, body(kind));
      if (!r.ok) { say("b-result", `Preview: ${failure(r)}`, true); return; }
      say("b-result", "");
      pending = { kind, code: r.data.confirm };
      what.textContent = r.data.schedules.length
        ? `${kind === "pause" ? "Pause" : "Resume"} these ${r.data.schedules.length} schedules (${r.data.selector})?`
        : `No schedule matches ${r.data.selector}.`;
      list.replaceChildren(...r.data.schedules.map((n) => el("li", {}, n)));
      if (r.data.schedules.length) confirm.dataset.ready = "1";
      step.classList.remove("hidden");
      applyPermissions();
    }
    confirm.addEventListener("click", async () => {
      if (!pending) return;
      const { kind, code } = pending;
      const r = await call("POST", `/api/v1/bulk/${kind}`, { ...body(kind), confirm: code });
      reset();
      if (r.status === 409) { say("b-result", "The schedules chosen changed since the preview: preview again.", true); return; }
      if (!r.ok) { say("b-result", `${kind}: ${failure(r)}`, true); return; }
      say("b-result", `${kind === "pause" ? "Paused" : "Resumed"} ${r.data.schedules.length} schedules.`);
      refreshActivity();
    });
    box.append(
      el("h2", {}, "Pause or resume by label"),
      el("p", { class: "why-not muted hidden", id: "b-why" }),
      el("div", { class: "row" }, selector, reason, until,
        el("button", { type: "button", id: "b-preview-pause", "data-action": "preview", onclick: () => preview("pause") }, "Preview pause"),
        el("button", { type: "button", id: "b-preview-resume", "data-action": "preview", onclick: () => preview("resume") }, "Preview resume")),
      step, el("p", { id: "b-result", role: "status" }),
      el("h2", {}, "Activity"),
      el("table", { id: "activity", class: "runs" }, el("thead", {}, el("tr", {}, ...["When", "Who", "Action", "Schedules", "Reason"]
        .map((h) => el("th", {}, h)))), el("tbody")));
    applyPermissions();
  }

  async function refreshActivity() {
    const table = $("activity");
    if (!table) return;
    const r = await call("GET", "/api/v1/activity?limit=50");
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const a of r.ok ? r.data.items : []) {
      body.append(el("tr", { "data-activity": a.id },
        el("td", {}, utc(a.at)), el("td", { class: "who" }, a.who), el("td", { class: "what" }, a.action.replace("_", " ")),
        el("td", {}, ...a.targets.slice(0, 20).flatMap((n, i) => [i ? ", " : "", el("a", { href: `#/schedule/${encodeURIComponent(n)}` }, n)]),
          a.targets.length > 20 ? ` and ${a.targets.length - 20} more` : ""),
        el("td", { class: "reason" }, a.reason)));
    }
    if (!body.rows.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, r.ok ? "No action yet." : "Cannot be read.")));
  }

  // ---- routing ----------------------------------------------------------------------------------------

  async function refreshAll() {
    await learn();
    const route = location.hash.match(/^#\/schedule\/([^/]+)/);
    if (route) {
      const name = decodeURIComponent(route[1]);
      if (shownSchedule !== name) { shownSchedule = name; renderScheduleActions(name); }
      await refreshSchedule(name);
    } else {
      shownSchedule = null;
      renderOverviewPanel();
      await refreshActivity();
    }
    applyPermissions();
    document.body.dataset.actions = "ready";
  }

  async function tick() {
    const route = location.hash.match(/^#\/schedule\/([^/]+)/);
    if (route) await refreshSchedule(decodeURIComponent(route[1])); else await refreshActivity();
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", refreshAll);
    refreshAll();
    setInterval(() => { tick().catch(() => {}); }, 5000);
  });
})();
