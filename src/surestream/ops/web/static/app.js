// The surestream web view: draws the pipeline graph once, then polls the run's JSON API
// every second and writes the figures into the page and into the graph's text slots
// (count-<node id>, and every element with data-rate="<edge id>"). Plain JavaScript, no
// library, no build step. Data from the run (error records!) is only ever set as text.
"use strict";

const POLL_MS = 1000;
const RETRY_MS = 5000;
const STALE_S = 3;  // the runner publishes every 0.25 s while it runs
const APIS = ["status", "operators", "partitions", "checkpoints", "errors", "graph"];
const NUMBER = new Intl.NumberFormat("en-US");
let polls = 0;

const byId = (id) => document.getElementById(id);

function num(n) {
  return n === null || n === undefined ? "–" : NUMBER.format(n);
}

function perSecond(r) {
  if (r === null || r === undefined) return "–";
  return NUMBER.format(r >= 100 ? Math.round(r) : Math.round(r * 10) / 10) + "/s";
}

function utc(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = ms / 1000;
  if (Math.abs(s) < 1) return Math.round(ms) + " ms";
  if (Math.abs(s) < 120) return (Math.round(s * 10) / 10) + " s";
  if (Math.abs(s) < 7200) return (Math.round(s / 6) / 10) + " min";
  return (Math.round(s / 360) / 10) + " h";
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function setText(id, text) {
  const el = byId(id);
  if (el) el.textContent = text;
}

// One table body from rows: each cell is [text, className] or text.
function fillTable(id, rows, rowAttrs) {
  const body = byId(id).tBodies[0];
  const fresh = document.createElement("tbody");
  rows.forEach((cells, i) => {
    const tr = document.createElement("tr");
    const attrs = rowAttrs ? rowAttrs(i) : {};
    Object.entries(attrs).forEach(([k, v]) => {
      if (k === "class") tr.className = v; else tr.setAttribute(k, v);
    });
    cells.forEach((cell) => {
      const td = document.createElement("td");
      const [text, cls, field] = Array.isArray(cell) ? cell : [cell, "", ""];
      td.textContent = text;
      if (cls) td.className = cls;
      if (field) td.dataset.field = field;
      tr.appendChild(td);
    });
    fresh.appendChild(tr);
  });
  body.replaceWith(fresh);
}

function renderStatus(s) {
  document.title = "surestream · " + (s.pipeline || "starting");
  setText("pipeline", s.pipeline || "…");
  const state = byId("state");
  state.textContent = s.state;
  state.className = "badge " + s.state;
  setText("connection", s.state === "running" && s.snapshot_age_s > STALE_S
          ? "no figures from the runner for " + duration(s.snapshot_age_s * 1000) +
            " (a source that blocks, or a long step or checkpoint)" : "");
  if (s.state === "starting") return;
  setText("run", "run " + s.run_id + " · pid " + s.pid + " · up " +
          duration(s.uptime_s * 1000) + (s.live ? " · live input" : " · bounded input"));
  setText("records-in", num(s.records_in));
  setText("records-per-s", perSecond(s.records_per_s));
  setText("watermark", utc(s.watermark));
  setText("watermark-lag", duration(s.watermark_lag_ms));
  setText("late", num(s.late));
  setText("duplicates", num(s.duplicates));
  setText("errors", num(s.errors));
  setText("checkpoints-taken", num(s.checkpoints.taken));
  setText("checkpoints-failed", num(s.checkpoints.failed));
  setText("since-checkpoint", s.checkpoints.seconds_since_last_success === null ? "none yet"
          : duration(s.checkpoints.seconds_since_last_success * 1000));
  fillTable("outputs", s.outputs.map((o) => [
    [o.tag, "", "tag"], o.type + (o.errors_output ? " (errors)" : ""),
    [num(o.written), "num", "written"], [num(o.committed), "num", "committed"],
    [perSecond(o.records_per_s), "num", "records_per_s"]]),
    (i) => ({"data-output": s.outputs[i].tag}));
}

function gauges(state) {
  return Object.entries(state || {}).map(([k, v]) =>
    k + " " + (k === "bytes" ? bytes(v) : num(v))).join(", ");
}

function renderOperators(o) {
  fillTable("operators", o.operators.map((op) => [
    [op.name, "", "name"], op.stream, op.kind,
    [num(op.records_in), "num", "records_in"], [num(op.records_out), "num", "records_out"],
    [Object.entries(op.emitted).map(([t, n]) => t + " " + num(n)).join(", "), "", "emitted"],
    [perSecond(op.records_per_s), "num", "records_per_s"],
    [duration(op.seconds * 1000), "num", "seconds"], [gauges(op.state), "", "state"]]),
    (i) => ({"data-operator": o.operators[i].name}));
}

function renderPartitions(p) {
  fillTable("partitions", p.partitions.map((part) => [
    part.source, [part.partition, "", "partition"], [num(part.position), "num", "position"],
    [utc(part.watermark), "", "watermark"], [duration(part.lag_ms), "num", "lag_ms"],
    [part.kafka ? num(part.kafka.lag) : "–", "num", "source_lag"],
    part.ended ? "yes" : "no"]),
    (i) => ({"data-partition": String(p.partitions[i].index)}));
}

function renderCheckpoints(c) {
  setText("checkpoint-failure", c.last_failure ? "last failure: " + c.last_failure : "");
  const rows = c.history.slice().reverse();
  fillTable("checkpoints", rows.map((cp) => [
    [num(cp.id), "num", "id"], utc(cp.at_ms), [duration(cp.duration_ms), "num", "duration"],
    [bytes(cp.bytes_written), "num", "bytes_written"], [bytes(cp.bytes_total), "num", "bytes_total"],
    [num(cp.records_in), "num", "records_in"],
    [cp.ok ? (cp.finished ? "ok, final" : "ok") : "failed: " + cp.error, "", "result"]]),
    (i) => ({"data-checkpoint": String(rows[i].id), "class": rows[i].ok ? "" : "failed"}));
}

function renderErrors(e) {
  fillTable("error-reasons", e.by_reason.map((r) => [
    [r.operator, "", "operator"], [r.error_type, "", "error_type"],
    [num(r.count), "num", "count"]]));
  fillTable("latest-errors", e.latest.map((r) => [
    [r.operator || "", "", "operator"], [r.error_type || "", "", "error_type"],
    [r.error_message || "", "", "error_message"], [r.raw === null || r.raw === undefined ? "" : String(r.raw), "code", "raw"]]));
}

const NODE_UNITS = {source: "read", operator: "in", output: "written", error_output: "written",
                    error_split: "errors"};

function renderGraph(g) {
  g.nodes.forEach((n) => {
    const el = byId("count-" + n.id);
    if (el) el.textContent = n.count === null ? "" : num(n.count) + " " + NODE_UNITS[n.kind];
  });
  g.edges.forEach((e) => {
    // records/s on every edge; an errors edge also says how many so far (the graph
    // shows them nowhere else per operator)
    const text = e.count === null ? "" :
      (e.role === "errors" ? num(e.count) + " · " : "") + perSecond(e.records_per_s);
    document.querySelectorAll('[data-rate="' + CSS.escape(e.id) + '"]')
      .forEach((el) => { el.textContent = text; });
  });
}

// Where the main parts are on the page (page pixels), for tools that look at a
// screenshot of it.
function markRegions() {
  const regions = {};
  ["status-cards", "graph", "counters"].forEach((id) => {
    const r = byId(id).getBoundingClientRect();
    regions[id] = {x: Math.round(r.left + window.scrollX), y: Math.round(r.top + window.scrollY),
                   w: Math.round(r.width), h: Math.round(r.height)};
  });
  document.body.dataset.regions = JSON.stringify(regions);
}

async function getJSON(name) {
  const r = await fetch("/api/" + name, {cache: "no-store"});
  if (!r.ok) throw new Error("/api/" + name + ": HTTP " + r.status);
  return r.json();
}

async function loadGraph() {
  const r = await fetch("/graph.svg", {cache: "no-store"});
  if (!r.ok) throw new Error("/graph.svg: HTTP " + r.status);
  const svg = await r.text();
  byId("graph").innerHTML = svg.replace(/^<\?xml[^>]*>\s*/, "");
}

async function poll() {
  let next = POLL_MS;
  try {
    if (!byId("graph").querySelector("svg")) await loadGraph();
    const [status, operators, partitions, checkpoints, errors, graph] =
      await Promise.all(APIS.map(getJSON));
    renderStatus(status);
    renderOperators(operators);
    renderPartitions(partitions);
    renderCheckpoints(checkpoints);
    renderErrors(errors);
    renderGraph(graph);
    polls += 1;
    document.body.dataset.polls = String(polls);
    document.body.dataset.records = String(status.records_in === undefined ? "" : status.records_in);
    document.body.classList.remove("disconnected");
    setText("updated", "updated " + new Date().toLocaleTimeString());
  } catch (err) {
    document.body.classList.add("disconnected");
    setText("connection", "no answer from the run (it has ended, or its server stopped): " +
            err.message);
    next = RETRY_MS;
  }
  markRegions();
  setTimeout(poll, next);
}

poll();
