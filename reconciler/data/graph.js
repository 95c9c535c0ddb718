"use strict";
// The dependency graph (issue 18): the Graph view, laid out by the vendored dagre and drawn as SVG,
// and a schedule's upstreams and downstreams on its page. As in dashboard.js, every value from the
// server is set as textContent or an attribute, never parsed as HTML; the CSP forbids inline code.
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const STATUS = /^[a-z_]+$/;  // a status becomes a class name only if it is a plain word
  let drawn = null;  // the JSON last drawn: the 5 s refresh redraws only what changed
  let shape = null;  // the node names and edges last laid out: a new status only recolours

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }
  function link(name) {
    const a = document.createElement("a");
    a.href = `#/schedule/${encodeURIComponent(name)}`;
    a.className = "dep";
    a.dataset.name = name;
    a.textContent = name;
    return a;
  }
  function auth() { return window.reconcilerAuth ? window.reconcilerAuth() : {}; }  // a token, where reads need one

  function edgeText(e) {
    const how = e.kind === "after" ? `after, on ${e.on}${e.all ? ", all" : ""}`
      : `requires ${e.status}${e.within_seconds != null ? ` within ${e.within_seconds} s` : ""}`;
    return `${e.from} → ${e.to} (${how})`;
  }

  function nodeStatus(n) { return n.last_status && STATUS.test(n.last_status) ? n.last_status : "never"; }
  function nodeTip(n) {
    return `${n.name} · ${n.state}${n.paused ? ", paused" : ""} · last run: ${n.last_status || "never"}` +
      (n.description ? `\n${n.description}` : "");
  }
  function paint(node, n) {
    const status = nodeStatus(n);
    node.setAttribute("class", `gnode ${status}${n.state !== "active" || n.paused ? " inactive" : ""}`);
    node.dataset.status = status;
    node.querySelector("title").textContent = nodeTip(n);
  }

  // Same nodes and edges as drawn: recolour in place, so a layout is not computed again and the
  // node a keyboard user is on keeps the focus. True if that was enough.
  function recolour(data, key) {
    if (key !== shape || !$("g-svg")) return false;
    const byName = new Map(data.nodes.map((n) => [n.name, n]));
    for (const node of $("g-svg").querySelectorAll("a.gnode")) paint(node, byName.get(node.dataset.name));
    return true;
  }

  function draw(data) {
    const canvas = $("g-canvas");
    const shown = data.nodes.length;
    $("g-summary").textContent = shown
      ? `${shown} schedules, ${data.edges.length} dependencies` + (data.truncated
        ? ` (the first ${shown} of ${data.total_nodes} schedules by name: the graph is cut)` : "")
      : "No schedule depends on another.";
    const key = JSON.stringify([data.nodes.map((n) => n.name), data.edges]);
    if (recolour(data, key)) return;
    shape = key;
    if (!shown) { canvas.replaceChildren(); return; }
    const g = new dagre.graphlib.Graph({ multigraph: true });
    g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of data.nodes) g.setNode(n.name, { width: Math.max(90, n.name.length * 7.5 + 28), height: 34 });
    data.edges.forEach((e, i) => g.setEdge(e.from, e.to, {}, `${e.kind}:${i}`));
    dagre.layout(g);
    document.body.dataset.graphLayouts = String(Number(document.body.dataset.graphLayouts || 0) + 1);
    const size = g.graph();
    const picture = svg("svg", { id: "g-svg", width: Math.ceil(size.width), height: Math.ceil(size.height),
      viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`, role: "img", "aria-label": "Dependency graph" });
    picture.append(svg("defs", {}, svg("marker", { id: "g-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" }))));
    data.edges.forEach((e, i) => {
      const points = g.edge(e.from, e.to, `${e.kind}:${i}`).points;
      const d = points.map((p, j) => `${j ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      picture.append(svg("g", { class: `gedge ${e.kind === "after" ? "after" : "requires"}`, "data-from": e.from, "data-to": e.to,
        "data-kind": e.kind }, svg("title", {}, edgeText(e)), svg("path", { d, "marker-end": "url(#g-arrow)" })));
    });
    for (const n of data.nodes) {
      const box = g.node(n.name);
      const node = svg("a", { href: `#/schedule/${encodeURIComponent(n.name)}`, "data-name": n.name,
        transform: `translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})` },
      svg("title", {}),
      svg("rect", { width: box.width, height: box.height, rx: "6", ry: "6" }),
      svg("text", { x: box.width / 2, y: box.height / 2 + 4, "text-anchor": "middle" }, n.name));
      paint(node, n);
      picture.append(node);
    }
    canvas.replaceChildren(picture);
  }

  async function refreshGraph() {
    try {
      const response = await fetch("/api/v1/graph", { headers: { Accept: "application/json", ...auth() } });
      if (!response.ok) throw new Error(`/api/v1/graph: ${response.status}`);
      const text = await response.text();
      if (text !== drawn) { draw(JSON.parse(text)); drawn = text; }
      document.body.dataset.graph = "drawn";
      document.body.dataset.graphRefreshes = String(Number(document.body.dataset.graphRefreshes || 0) + 1);
    } catch (error) {
      $("g-summary").textContent = `the graph could not be drawn: ${error.message}`;
    }
  }

  function renderDeps(s) {
    const ups = s.upstreams || [];
    const downs = s.downstreams || [];
    const fill = (id, names) => {
      const dd = $(id);
      dd.replaceChildren();
      names.forEach((name, i) => { if (i) dd.append(", "); dd.append(link(name)); });
      if (!names.length) { const none = document.createElement("span"); none.className = "muted"; none.textContent = "none"; dd.append(none); }
    };
    fill("s-upstreams", ups);
    fill("s-downstreams", downs);
    $("s-deps").classList.toggle("hidden", !ups.length && !downs.length);
  }

  document.addEventListener("dashboard:graph", refreshGraph);
  document.addEventListener("dashboard:schedule", (event) => renderDeps(event.detail));
})();
