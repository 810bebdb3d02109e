// vf-view: draws the runs embedded in this page (no network, no libraries).
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("vf-data").textContent);
  const runs = DATA.runs;
  const SVG = "http://www.w3.org/2000/svg";
  // A source is one set of rollouts: a vf-eval run's rollouts, or a vf-train evaluation.
  const sources = [];
  runs.forEach((run, r) => Object.keys(run.rollout_sets).forEach((set) =>
    sources.push({ run: r, set: set, label: run.name + (set === "rollouts" ? "" : " · " + set) })));
  const view = { source: 0, compare: -1, min: "", max: "", status: "all", search: "" };
  const PAGE = 200;  // cards drawn at once; "show more" draws the next ones
  let limit = PAGE;
  if (sources.length > 1 && runs.length === 1) view.compare = 1;  // before/after of one run
  // The view is kept in the address (#source=0&compare=1&status=failed&min=0.5...): links to
  // a filtered view can be shared, and reloading keeps it.
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of ["source", "compare"]) if (params.has(key)) view[key] = Number(params.get(key));
  for (const key of ["min", "max", "status", "search"]) if (params.has(key)) view[key] = params.get(key);
  if (!(view.source >= 0 && view.source < sources.length)) view.source = 0;
  if (!(view.compare >= -1 && view.compare < sources.length)) view.compare = -1;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(4);
    return String(value);
  }

  // -- summary table ------------------------------------------------------------------------
  function summaryTable(indices) {
    const labels = [];
    indices.forEach((i) => runs[i].summary.forEach((row) => {
      if (!labels.includes(row.label)) labels.push(row.label);
    }));
    const head = el("tr", {}, el("th", {}, "run"), el("th", {}, "kind"), el("th", {}, "status"),
      labels.map((l) => el("th", {}, l)));
    const rows = indices.map((i) => {
      const run = runs[i];
      const values = Object.fromEntries(run.summary.map((row) => [row.label, row.value]));
      return el("tr", { "data-run": String(i) }, el("td", { title: run.path }, run.name),
        el("td", {}, run.kind), el("td", {}, run.status),
        labels.map((l) => el("td", { class: "num" }, fmt(values[l]))));
    });
    return el("table", { class: "summary", id: "summary-table" }, el("thead", {}, head),
      el("tbody", {}, rows));
  }

  // -- training curves (inline SVG) ---------------------------------------------------------
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }
  function curve(name, points) {
    const w = 320, h = 170, left = 52, right = 10, top = 22, bottom = 26;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const sx = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - right);
    const sy = (y) => h - bottom - ((y - y0) / (y1 - y0)) * (h - top - bottom);
    const chart = svg("svg", { class: "curve", width: w, height: h, viewBox: `0 0 ${w} ${h}`,
      role: "img", "data-metric": name });
    const title = svg("text", { x: left, y: 14, class: "title" });
    title.textContent = name;
    chart.append(title);
    chart.append(svg("line", { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom, class: "axis" }));
    chart.append(svg("line", { x1: left, y1: top, x2: left, y2: h - bottom, class: "axis" }));
    for (const [value, y] of [[y1, top + 4], [y0, h - bottom]]) {
      const label = svg("text", { x: left - 4, y: y, class: "tick", "text-anchor": "end" });
      label.textContent = fmt(value);
      chart.append(label);
    }
    for (const [value, x, anchor] of [[x0, left, "start"], [x1, w - right, "end"]]) {
      const label = svg("text", { x: x, y: h - 8, class: "tick", "text-anchor": anchor });
      label.textContent = "step " + fmt(value);
      chart.append(label);
    }
    chart.append(svg("polyline", { class: "line",
      points: points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
    points.forEach((p) => chart.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.2, class: "dot" })));
    return chart;
  }
  function curves(run) {
    const names = Object.keys(run.curves || {});
    if (!names.length) return null;
    const first = names.slice(0, 4), rest = names.slice(4);  // the main ones; the rest folded
    return el("section", { id: "curves" }, el("h2", {}, "Training curves · " + run.name),
      el("div", { class: "curves" }, first.map((n) => curve(n, run.curves[n]))),
      rest.length ? el("details", {}, el("summary", {}, `${rest.length} more logged values`),
        el("div", { class: "curves" }, rest.map((n) => curve(n, run.curves[n])))) : null);
  }

  // -- rollouts -----------------------------------------------------------------------------
  function message(m) {
    return el("div", { class: "msg role-" + m.role },
      el("span", { class: "role" }, m.role + (m.tool_call_id ? " · " + m.tool_call_id : "")),
      m.content ? el("pre", {}, m.content) : null,
      (m.tool_calls || []).map((c) => el("div", { class: "tool-call" },
        el("span", { class: "tool-name" }, "tool call " + c.name), el("pre", {}, pretty(c.arguments)))));
  }
  function pretty(args) {
    try { return JSON.stringify(JSON.parse(args), null, 1); } catch (e) { return String(args); }
  }
  function card(r) {
    const failed = !!r.error;
    return el("article", { class: "rollout" + (failed ? " failed" : ""), "data-reward": fmt(r.reward),
      "data-example": String(r.example_id) },
      el("h3", {}, `example ${r.example_id} · rollout ${r.rollout_index} · reward ${fmt(r.reward)}`,
        failed ? el("span", { class: "badge" }, "failed") : null),
      el("div", { class: "metrics" }, Object.entries(r.metrics).map(([k, v]) =>
        el("span", { class: "chip" }, `${k} ${fmt(v)}`))),
      failed ? el("p", { class: "error" }, r.error) : null,
      el("details", {}, el("summary", {}, "prompt"), r.prompt.map(message)),
      el("div", { class: "completion" }, r.completion.length ? r.completion.map(message)
        : el("p", { class: "empty" }, "(empty completion)")),
      r.answer ? el("p", { class: "answer" }, "answer: " + r.answer) : null);
  }
  function matches(r) {
    const reward = r.reward === null || r.reward === undefined ? NaN : r.reward;
    if (view.min !== "" && !(reward >= Number(view.min))) return false;
    if (view.max !== "" && !(reward <= Number(view.max))) return false;
    if (view.status === "failed" && !r.error) return false;
    if (view.status === "ok" && r.error) return false;
    if (view.search) {
      const text = JSON.stringify([r.prompt, r.completion, r.answer]).toLowerCase();
      if (!text.includes(view.search.toLowerCase())) return false;
    }
    return true;
  }
  function rolloutsOf(i) { const s = sources[i]; return runs[s.run].rollout_sets[s.set]; }

  function sourceSelect(key, value, withNone) {
    const select = el("select", { id: "pick-" + key, onchange: (e) => { view[key] = Number(e.target.value); limit = PAGE; draw(); } },
      withNone ? el("option", { value: "-1" }, "(none)") : null,
      sources.map((s, i) => el("option", { value: String(i) }, s.label)));
    select.value = String(value);
    return select;
  }
  function input(key, attrs) {
    return el("input", Object.assign({ id: "filter-" + key, value: view[key],
      onchange: (e) => { view[key] = e.target.value; limit = PAGE; draw(); } }, attrs));
  }
  function filters() {
    const status = el("select", { id: "filter-status", onchange: (e) => { view.status = e.target.value; limit = PAGE; draw(); } },
      el("option", { value: "all" }, "all rollouts"), el("option", { value: "failed" }, "failed only"),
      el("option", { value: "ok" }, "succeeded only"));
    status.value = view.status;
    return el("div", { class: "filters" },
      el("label", {}, "rollouts of ", sourceSelect("source", view.source, false)),
      el("label", {}, "compare with ", sourceSelect("compare", view.compare, true)),
      el("label", {}, "reward ≥ ", input("min", { type: "number", step: "any", size: 5 })),
      el("label", {}, "reward ≤ ", input("max", { type: "number", step: "any", size: 5 })),
      el("label", {}, status),
      el("label", {}, "text ", input("search", { type: "search", placeholder: "search" })));
  }
  function more(shown) {
    if (shown.length <= limit) return null;
    return el("button", { id: "show-more", onclick: () => { limit += PAGE; draw(); } },
      `show ${Math.min(PAGE, shown.length - limit)} more (${shown.length - limit} not drawn)`);
  }
  function single(list) {
    const shown = list.filter(matches);
    return el("section", { id: "rollouts" },
      el("h2", {}, "Rollouts"), el("p", { class: "count", id: "rollout-count" }, `showing ${shown.length} of ${list.length}`),
      shown.slice(0, limit).map(card), more(shown));
  }
  function compare(left, right) {
    const byExample = new Map();
    right.forEach((r) => { if (!byExample.has(String(r.example_id))) byExample.set(String(r.example_id), []); byExample.get(String(r.example_id)).push(r); });
    const shown = left.filter(matches);
    const mean = (l) => { const v = l.filter((r) => !r.error && r.reward !== null).map((r) => r.reward); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
    const [a, b] = [mean(left), mean(right)];
    return el("section", { id: "compare" },
      el("h2", {}, "Side by side"),
      el("table", { class: "summary", id: "compare-table" },
        el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, sources[view.source].label),
          el("th", {}, sources[view.compare].label), el("th", {}, "difference"))),
        el("tbody", {},
          el("tr", {}, el("td", {}, "mean reward"), el("td", { class: "num" }, fmt(a)), el("td", { class: "num" }, fmt(b)),
            el("td", { class: "num" }, a === null || b === null ? "–" : (b - a >= 0 ? "+" : "") + (b - a).toFixed(4))),
          el("tr", {}, el("td", {}, "failed"), el("td", { class: "num" }, String(left.filter((r) => r.error).length)),
            el("td", { class: "num" }, String(right.filter((r) => r.error).length)), el("td", {}, "")))),
      el("p", { class: "count", id: "rollout-count" }, `showing ${shown.length} of ${left.length}`),
      shown.slice(0, limit).map((r) => el("div", { class: "pair" }, el("div", { class: "side" }, card(r)),
        el("div", { class: "side" }, (byExample.get(String(r.example_id)) || []).slice(0, 1).map(card)
          .concat(byExample.has(String(r.example_id)) ? [] : [el("p", { class: "empty" }, "not in the other run")])))),
      more(shown));
  }

  function draw() {
    history.replaceState(null, "", "#" + new URLSearchParams(
      Object.entries(view).map(([k, v]) => [k, String(v)])).toString());
    const app = document.getElementById("app");
    app.replaceChildren();
    if (!runs.length) { app.append(el("p", { class: "empty" }, "No runs.")); return; }
    app.append(el("section", { id: "summary" }, el("h2", {}, "Summary"), summaryTable(runs.map((_, i) => i))));
    const run = sources.length ? runs[sources[view.source].run] : runs[0];
    const drawn = curves(run) || runs.map(curves).find((c) => c);
    if (drawn) app.append(drawn);
    if (!sources.length) { app.append(el("p", { class: "empty" }, "No rollouts saved.")); return; }
    app.append(filters());
    if (view.compare >= 0 && view.compare !== view.source) app.append(compare(rolloutsOf(view.source), rolloutsOf(view.compare)));
    else app.append(single(rolloutsOf(view.source)));
  }
  draw();
})();
