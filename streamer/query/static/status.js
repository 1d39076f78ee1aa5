// streamer status page, part 1: the API client (token, JSON errors) and the pipeline panel (health,
// cards, the sites table with each site's completeness). No build step; app.js is the chart panel.
"use strict";

const API = "/api/v1";
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
      tr.append(cell(site.site), cell(num(site.points)), cell(num(site.rows)), cell(Times.iso(site.last_sync_at)),
        cell(site.last_status || "–"), cell(age(site.watermark_age_s)), cell(num(site.samples_last_hour)),
        cell(pct(site.completeness_24h)), cell(num(site.repair_windows_24h)),
        cell(num(site.samples_recovered_24h)), cell(num(site.repair_api_calls_24h)),
        cell(site.last_error || "–"));
      return tr;
    }));
  } catch (e) { $("status-error").textContent = "status: " + e.message; $("status-error").hidden = false; }
}
