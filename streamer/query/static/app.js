// streamer status page: pipeline status and a time chart of chosen points. No build step, no deps.
// The drawn series are exposed as window.streamerChart and as JSON in the canvas's data-series
// attribute (what the browser test reads); data-state is loading | drawn | error.
"use strict";

const API = "/api/v1";
const COLORS = ["#2563eb", "#dc6803", "#067647", "#b42318", "#7a5af8", "#0e9384", "#c11574", "#475467"];
const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3 };
const $ = (id) => document.getElementById(id);
let lastRows = null;

function token() { return sessionStorage.getItem("streamerToken") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) { $("token-box").hidden = false; }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function iso(ms) { return ms == null ? "–" : new Date(ms).toISOString().replace(".000Z", "Z"); }
function age(s) {
  if (s == null) return "–";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) if (Math.abs(s) >= size) return (s / size).toFixed(1) + unit;
  return Math.round(s) + "s";
}
function num(n) { return n == null ? "–" : Number(n).toLocaleString("en-US"); }
function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

// ------------------------------------------------------------------------------------- status panel
async function refreshHealth() {
  const badge = $("health");
  try {
    const response = await fetch("/health");
    const body = await response.json();
    badge.textContent = body.status;
    badge.className = "badge " + body.status;
  } catch (e) { badge.textContent = "unreachable"; badge.className = "badge down"; }
}

function pct(x) { return x == null ? "–" : (100 * x).toFixed(2) + " %"; }

async function refreshStatus() {
  try {
    const s = await api(API + "/status");
    $("status-error").hidden = true;
    const rows = s.clickhouse.rows;
    if (lastRows && rows != null) {
      const perS = (rows - lastRows.rows) / ((s.generated_at - lastRows.at) / 1000);
      $("rate").textContent = perS >= 0 ? Math.round(perS).toLocaleString("en-US") + " rows/s" : "–";
    }
    if (rows != null) lastRows = { rows, at: s.generated_at };
    $("rows").textContent = num(rows);
    $("lag").textContent = s.kafka.reachable ? num(s.kafka.total_lag) : "Kafka unreachable";
    $("dlq").textContent = s.kafka.reachable ? num(s.kafka.dlq_depth) : "–";
    $("schema").textContent = s.clickhouse.reachable ? "v" + s.clickhouse.schema_version : "unreachable";
    const body = $("sites").querySelector("tbody");
    body.replaceChildren(...s.sites.map((site) => {
      const tr = document.createElement("tr");
      tr.append(cell(site.site), cell(num(site.points)), cell(num(site.rows)), cell(iso(site.last_sync_at)),
        cell(site.last_status || "–"), cell(age(site.watermark_age_s)), cell(num(site.samples_last_hour)),
        cell(pct(site.completeness_24h)), cell(num(site.repair_windows_24h)),
        cell(num(site.samples_recovered_24h)), cell(num(site.repair_api_calls_24h)),
        cell(site.last_error || "–"));
      return tr;
    }));
  } catch (e) { $("status-error").textContent = "status: " + e.message; $("status-error").hidden = false; }
}

// --------------------------------------------------------------------------------------- chart panel
async function loadSites() {
  const { sites } = await api(API + "/sites");
  const select = $("site");
  select.replaceChildren(...sites.map((s) => new Option(s.site + " (" + s.points + ")", s.site)));
  const wanted = new URLSearchParams(location.search).get("site");
  if (wanted && sites.some((s) => s.site === wanted)) select.value = wanted;
  if (sites.length) await loadPoints();
}

async function loadPoints() {
  const site = $("site").value;
  const { points } = await api(API + "/sites/" + encodeURIComponent(site) + "/points");
  const wanted = new Set((new URLSearchParams(location.search).get("points") || "").split(",").filter(Boolean));
  $("points").replaceChildren(...points.map((p) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = p.point_name; box.checked = wanted.has(p.point_name);
    label.append(box, document.createTextNode(p.point_name + (p.unit ? " [" + p.unit + "]" : "")));
    li.title = p.point_name; li.append(label);
    return li;
  }));
  filterPoints();
}

function filterPoints() {
  const needle = $("point-filter").value.toLowerCase();
  for (const li of $("points").children) li.hidden = needle && !li.title.toLowerCase().includes(needle);
}

function chosenPoints() {
  return [...$("points").querySelectorAll("input:checked")].map((box) => box.value);
}

function timeRange() {
  const range = $("range").value;
  if (range === "custom") return { start: $("start").value.trim(), end: $("end").value.trim() };
  const end = Date.now();
  return { start: String(end - RANGES[range]), end: String(end) };
}

async function draw(event) {
  if (event) event.preventDefault();
  const canvas = $("chart");
  const points = chosenPoints();
  $("chart-error").hidden = true;
  if (!points.length) { $("chart-info").textContent = "Pick at least one point."; return; }
  canvas.dataset.state = "loading";
  const { start, end } = timeRange();
  const query = new URLSearchParams({ points: points.join(","), resolution: $("resolution").value });
  if (start) query.set("start", start);
  if (end) query.set("end", end);
  try {
    const answer = await api(API + "/sites/" + encodeURIComponent($("site").value) + "/samples?" + query);
    const series = points.map((point) => ({
      point, rows: answer.rows.filter((r) => r.point_name === point),
    }));
    render(canvas, answer, series);
    $("chart-info").textContent = answer.row_count + " rows at resolution " + answer.resolution +
      " (asked " + answer.requested_resolution + "), " + iso(answer.start) + " .. " + iso(answer.end);
  } catch (e) {
    canvas.dataset.state = "error";
    $("chart-error").textContent = e.message; $("chart-error").hidden = false;
  }
}

function render(canvas, answer, series) {
  const summary = series.map((s) => ({
    point: s.point, count: s.rows.length,
    first: s.rows.length ? [s.rows[0].timestamp, s.rows[0].value] : null,
    last: s.rows.length ? [s.rows.at(-1).timestamp, s.rows.at(-1).value] : null,
  }));
  window.streamerChart = { site: answer.site, resolution: answer.resolution, start: answer.start, end: answer.end,
    series: series.map((s) => ({ point: s.point, data: s.rows.map((r) => [r.timestamp, r.value]) })) };
  canvas.dataset.series = JSON.stringify(summary);
  paint(canvas, answer, series);
  canvas.dataset.state = "drawn";
}

function paint(canvas, answer, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 900, height = Math.round(width * 0.42);
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const pad = { left: 60, right: 16, top: 28, bottom: 30 };
  const values = series.flatMap((s) => s.rows.flatMap((r) => r.min != null ? [r.min, r.max] : [r.value]));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!values.length) { lo = 0; hi = 1; } else if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => pad.left + (t - answer.start) / (answer.end - answer.start) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v - lo) / (hi - lo) * (height - pad.top - pad.bottom);
  axes(g, width, height, pad, answer, lo, hi, x, y);
  series.forEach((s, i) => line(g, s.rows, COLORS[i % COLORS.length], x, y));
  legend(g, series, pad);
}

function axes(g, width, height, pad, answer, lo, hi, x, y) {
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#6b7385"; g.strokeStyle = "#e3e6ec"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4, py = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(pad.left, py); g.lineTo(width - pad.right, py); g.stroke();
    g.textAlign = "right"; g.fillText(Number(v.toPrecision(4)).toString(), pad.left - 6, py + 4);
  }
  const span = answer.end - answer.start;
  for (let i = 0; i <= 5; i++) {
    const t = answer.start + span * i / 5, px = Math.round(x(t)) + 0.5;
    g.beginPath(); g.moveTo(px, pad.top); g.lineTo(px, height - pad.bottom); g.stroke();
    const text = new Date(t).toISOString();
    g.textAlign = i === 0 ? "left" : i === 5 ? "right" : "center";
    g.fillText(span > 2 * 86400e3 ? text.slice(5, 16).replace("T", " ") : text.slice(11, 16), px, height - pad.bottom + 16);
  }
}

function line(g, rows, color, x, y) {
  if (rows.length && rows[0].min != null) {  // rollups: a band from min to max behind the mean
    g.fillStyle = color + "22"; g.beginPath();
    rows.forEach((r, i) => i ? g.lineTo(x(r.timestamp), y(r.max)) : g.moveTo(x(r.timestamp), y(r.max)));
    [...rows].reverse().forEach((r) => g.lineTo(x(r.timestamp), y(r.min)));
    g.closePath(); g.fill();
  }
  g.strokeStyle = color; g.lineWidth = 1.6; g.beginPath();
  rows.forEach((r, i) => i ? g.lineTo(x(r.timestamp), y(r.value)) : g.moveTo(x(r.timestamp), y(r.value)));
  g.stroke();
  if (rows.length === 1) { g.fillStyle = color; g.fillRect(x(rows[0].timestamp) - 2, y(rows[0].value) - 2, 4, 4); }
}

function legend(g, series, pad) {
  let px = pad.left;
  g.font = "12px system-ui, sans-serif"; g.textAlign = "left";
  series.forEach((s, i) => {
    g.fillStyle = COLORS[i % COLORS.length]; g.fillRect(px, 10, 12, 4);
    g.fillStyle = "#1d2330"; const label = s.point + " (" + s.rows.length + ")";
    g.fillText(label, px + 16, 16); px += g.measureText(label).width + 34;
  });
}

// ---------------------------------------------------------------------------------------------- boot
function applyUrl() {
  const q = new URLSearchParams(location.search);
  if (q.get("resolution")) $("resolution").value = q.get("resolution");
  if (q.get("start") || q.get("end")) {
    $("range").value = "custom";
    $("start").value = q.get("start") || ""; $("end").value = q.get("end") || "";
  }
  toggleCustom();
}

function toggleCustom() {
  for (const el of document.querySelectorAll(".custom")) el.hidden = $("range").value !== "custom";
}

async function boot() {
  $("token").value = token();
  $("token").addEventListener("change", () => { sessionStorage.setItem("streamerToken", $("token").value); location.reload(); });
  $("controls").addEventListener("submit", draw);
  $("site").addEventListener("change", loadPoints);
  $("range").addEventListener("change", toggleCustom);
  $("point-filter").addEventListener("input", filterPoints);
  applyUrl();
  refreshHealth(); refreshStatus();
  setInterval(refreshHealth, 10000); setInterval(refreshStatus, 5000);
  try {
    await loadSites();
    if (chosenPoints().length && new URLSearchParams(location.search).get("draw") !== "0") await draw();
  } catch (e) { $("chart-error").textContent = e.message; $("chart-error").hidden = false; }
  document.body.dataset.ready = "1";
}

boot();
