// streamer status page, part 2: the chart panel and the view's state in the URL.
// The URL holds the view (?site=&points=a,b&range=data|6h|custom&start=&end=&resolution=): a link
// opens the same chart, Back and Forward step through the views drawn (zooms included).
// What the browser test reads: #chart's data-state (loading | drawn | error), data-series (per point:
// count, first and last sample), data-x-min / data-x-max (the x range drawn), window.streamerChart.
"use strict";

const DAY_MS = 86400e3;
const MAX_COMPLETENESS_MS = 31 * DAY_MS;  // the completeness API's longest range
let siteList = [];
let units = {};  // point -> unit, of the site shown
let drawSeq = 0;
let pointOrder = [];  // the points of the view last asked for, in its order

// ------------------------------------------------------------------------------------ the URL state
function readUrl() {
  const q = new URLSearchParams(location.search);
  const timed = q.get("start") || q.get("end");
  return {
    site: q.get("site") || "", points: (q.get("points") || "").split(",").filter(Boolean),
    range: q.get("range") || (timed ? "custom" : "data"), start: q.get("start") || "",
    end: q.get("end") || "", resolution: q.get("resolution") || "auto",
  };
}

function urlOf(state) {
  const q = new URLSearchParams();
  if (state.site) q.set("site", state.site);
  if (state.points.length) q.set("points", state.points.join(","));
  q.set("range", state.range);
  if (state.range === "custom") { q.set("start", state.start); q.set("end", state.end); }
  if (state.resolution !== "auto") q.set("resolution", state.resolution);
  return "?" + q.toString().replace(/%2C/g, ",").replace(/%3A/g, ":");
}

function writeUrl(state, how) {
  const url = urlOf(state);
  if (how === "push" && url !== location.search) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function controlsState() {
  return { site: $("site").value, points: chosenPoints(), range: $("range").value,
    start: $("start").value.trim(), end: $("end").value.trim(), resolution: $("resolution").value };
}

/** Show `state` in the controls; what of it cannot be shown (an unknown site, point or range) is
 * said under the chart, quoted as the URL has it. */
async function applyState(state) {
  const problems = [];
  if (state.site && !siteList.some((s) => s.site === state.site)) {
    problems.push(`site "${state.site}" is not a known site`);
  } else if (state.site && state.site !== $("site").value) {
    $("site").value = state.site;
    await loadPoints();
  }
  const missing = state.points.filter((p) => !(p in units));
  if (missing.length) problems.push(`point(s) ${missing.map((p) => `"${p}"`).join(", ")} not in site ${$("site").value}`);
  for (const box of $("points").querySelectorAll("input")) box.checked = state.points.includes(box.value);
  pointOrder = state.points;
  $("resolution").value = ["raw", "5m", "1h"].includes(state.resolution) ? state.resolution : "auto";
  if (!setRange(state.range)) {
    problems.push(`range "${state.range}" is not data, custom or a length like 6h, 90m, 7d: showing the last day of data`);
  }
  if ($("range").value === "custom") { $("start").value = state.start; $("end").value = state.end; }
  fillRange();
  $("url-error").textContent = problems.length ? "In the URL: " + problems.join("; ") + "." : "";
  $("url-error").hidden = !problems.length;
}

// ------------------------------------------------------------------------------ range and pickers
/** Select `range`: a listed one, or any length like 3h, 90m, 2d (added to the list); false if neither. */
function setRange(range) {
  const select = $("range"), known = [...select.options].some((o) => o.value === range);
  const length = Times.presetMs(range) != null;
  if (!known && length) select.add(new Option("last " + range, range), select.querySelector('option[value="custom"]'));
  select.value = known || length ? range : "data";
  return known || length;
}

/** The start/end fields of the selected range; "data" is the day up to the site's newest sample. */
function fillRange() {
  const range = $("range").value;
  if (range === "data") {
    const last = (siteList.find((s) => s.site === $("site").value) || {}).last_sample;
    const end = last == null ? Date.now() : Math.ceil((last + 1) / 60e3) * 60e3;
    $("start").value = Times.iso(end - DAY_MS); $("end").value = Times.iso(end);
  } else if (range !== "custom") {
    $("start").value = "-" + range; $("end").value = "now";
  }
  for (const id of ["start", "end"]) preview(id);
}

/** Under a field: the instant it means now, and the picker set to it. */
function preview(id) {
  const text = $(id).value.trim(), ms = text ? Times.parse(text, Date.now()) : null;
  $(id + "-picker").value = Times.pickerValue(ms);
  $(id + "-at").textContent = !text ? "" : ms == null ? "sent as typed" : "= " + Times.iso(ms);
}

function typed(id) { $("range").value = "custom"; preview(id); }

function picked(id) {
  const ms = Times.fromPicker($(id + "-picker").value);
  if (ms == null) return;
  $(id).value = Times.iso(ms); typed(id);
}

// ---------------------------------------------------------------------------------- sites, points
async function loadSites() {
  siteList = (await api(API + "/sites")).sites;
  const select = $("site");
  select.replaceChildren(...siteList.map((s) => new Option(s.site + " (" + s.points + ")", s.site)));
  const wanted = readUrl().site;
  if (wanted && siteList.some((s) => s.site === wanted)) select.value = wanted;
  if (siteList.length) await loadPoints();
}

async function loadPoints() {
  const site = $("site").value;
  const { points } = await api(API + "/sites/" + encodeURIComponent(site) + "/points");
  units = Object.fromEntries(points.map((p) => [p.point_name, p.unit || ""]));
  $("points").replaceChildren(...points.map((p) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = p.point_name;
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

/** The checked points, those of the URL's view first in its order (the series and axes keep it). */
function chosenPoints() {
  const checked = [...$("points").querySelectorAll("input:checked")].map((box) => box.value);
  return pointOrder.filter((p) => checked.includes(p)).concat(checked.filter((p) => !pointOrder.includes(p)));
}

// ----------------------------------------------------------------------------------------- drawing
function showError(text) { $("chart-error").textContent = text; $("chart-error").hidden = false; }

function fail(box, text) { box.dataset.state = "error"; showError(text); }

/** Draw the controls' view; `how` is push (a new view: Back returns here), replace or none (the URL
 * already says it: Back/Forward). Errors say what was typed. */
async function draw(event, how = "push") {
  if (event) event.preventDefault();
  const box = $("chart"), state = controlsState(), seq = ++drawSeq;
  $("chart-error").hidden = true;
  for (const id of ["start", "end"]) preview(id);  // also for a value set without an input event
  if (!state.points.length) { $("chart-info").textContent = "Pick at least one point."; return; }
  pointOrder = state.points;
  if (how !== "none") writeUrl(state, how);
  const asked = `start "${state.start}", end "${state.end}"`;
  const now = Date.now(), from = Times.parse(state.start, now), to = Times.parse(state.end, now);
  if (from != null && to != null && from >= to) {
    return fail(box, `${asked}: the start (${Times.iso(from)}) must be before the end (${Times.iso(to)})`);
  }
  box.dataset.state = "loading";
  const query = new URLSearchParams({ points: state.points.join(","), resolution: state.resolution });
  if (state.start) query.set("start", state.start);
  if (state.end) query.set("end", state.end);
  try {
    const answer = await api(API + "/sites/" + encodeURIComponent(state.site) + "/samples?" + query);
    if (seq !== drawSeq) return;  // a newer view was asked for meanwhile
    render(box, answer, state.range === "data");
    showCompleteness(state.site, answer.start, answer.end, seq);
  } catch (e) {
    if (seq === drawSeq) fail(box, `${asked}, resolution ${state.resolution}: ${e.message}`);
  }
}

function render(box, answer, fit) {
  const index = new Map(answer.points.map((p, i) => [p, i]));  // one pass: rows can be 200,000
  const byPoint = answer.points.map(() => []);
  for (const r of answer.rows) byPoint[index.get(r.point_name)].push(r);
  box.dataset.series = JSON.stringify(answer.points.map((point, i) => {
    const rows = byPoint[i];
    return { point, count: rows.length,
      first: rows.length ? [rows[0].timestamp, rows[0].value] : null,
      last: rows.length ? [rows.at(-1).timestamp, rows.at(-1).value] : null };
  }));
  const drawn = Chart.draw(box, answer, units, fit, zoomTo, zoomOut);
  window.streamerChart = { site: answer.site, resolution: answer.resolution, start: answer.start,
    end: answer.end, xMin: drawn.xMin, xMax: drawn.xMax, axes: drawn.axes, bands: drawn.bands,
    series: answer.points.map((point, i) => ({ point, data: byPoint[i].map((r) => [r.timestamp, r.value]) })) };
  box.dataset.xMin = drawn.xMin; box.dataset.xMax = drawn.xMax;
  $("chart-info").textContent = (answer.row_count ? answer.row_count + " rows" : "No samples in this range") +
    " at resolution " + answer.resolution + " (asked " + answer.requested_resolution + "), " +
    Times.iso(answer.start) + " .. " + Times.iso(answer.end) + (fit ? " (fitted to the data)" : "") +
    ". Drag to zoom, double-click to zoom out, Back to return.";
  box.dataset.state = "drawn";
}

/** The range's completeness of the site (whole hours, as `streamer status` counts it). */
async function showCompleteness(site, start, end, seq) {
  const out = $("completeness");
  out.replaceChildren(); delete out.dataset.completeness;
  if (end - start > MAX_COMPLETENESS_MS) { out.textContent = "completeness: ranges up to 31 days"; return; }
  try {
    const c = await api(API + "/sites/" + encodeURIComponent(site) + "/completeness?" +
      new URLSearchParams({ start, end }));
    if (seq !== drawSeq) return;
    out.dataset.completeness = c.completeness == null ? "" : c.completeness;
    const strip = document.createElement("span"); strip.className = "hours";
    strip.append(...c.hours.map((h) => {
      const cellEl = document.createElement("i");
      cellEl.title = Times.iso(h.hour) + ": " + pct(h.completeness) + " (" + num(h.stored) + " of " + num(h.expected) + ")";
      cellEl.style.opacity = h.completeness == null ? 0.15 : 0.15 + 0.85 * h.completeness;
      return cellEl;
    }));
    out.append("completeness of " + site + ", the range's whole hours: " + pct(c.completeness) +
      " (" + num(c.stored) + " of " + num(c.expected) + " samples) ", strip);
  } catch (e) { out.textContent = "completeness: " + e.message; }
}

function zoomTo(from, to) {
  $("range").value = "custom";
  $("start").value = Times.iso(from); $("end").value = Times.iso(to);
  for (const id of ["start", "end"]) preview(id);
  draw(null, "push");
}

function zoomOut() {
  const shown = window.streamerChart;
  if (!shown) return;
  const half = shown.xMax - shown.xMin, mid = (shown.xMax + shown.xMin) / 2;
  zoomTo(Math.floor(mid - half), Math.ceil(Math.min(mid + half, Date.now())));
}

// ---------------------------------------------------------------------------------------------- boot
async function showUrlState(how) {
  const state = readUrl();
  await applyState(state);
  if (chosenPoints().length && new URLSearchParams(location.search).get("draw") !== "0") await draw(null, how);
}

async function boot() {
  $("token").value = token();
  $("token").addEventListener("change", () => { sessionStorage.setItem("streamerToken", $("token").value); location.reload(); });
  $("controls").addEventListener("submit", draw);
  $("site").addEventListener("change", async () => { await loadPoints(); fillRange(); });
  $("range").addEventListener("change", fillRange);
  for (const id of ["start", "end"]) {
    $(id).addEventListener("input", () => typed(id));
    $(id + "-picker").addEventListener("change", () => picked(id));
  }
  $("point-filter").addEventListener("input", filterPoints);
  window.addEventListener("popstate", () => showUrlState("none"));
  window.addEventListener("resize", () => Chart.resize($("chart")));
  refreshHealth(); refreshStatus();
  setInterval(refreshHealth, 10000); setInterval(refreshStatus, 5000);
  try {
    await loadSites();
    await showUrlState("replace");
  } catch (e) { showError(e.message); }
  document.body.dataset.ready = "1";
}

boot();
