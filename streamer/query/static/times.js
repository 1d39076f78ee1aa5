// Times as the API reads them (streamer/query/params.py): epoch ms, ISO 8601 (naive = UTC), "now" or
// relative like -6h. The page sends what the user typed to the API as typed (the API is the one judge,
// so a relative time stays relative in a shared URL); this copy of the grammar only previews a typed
// time and fills the pickers.
"use strict";

const Times = (() => {
  const UNIT_MS = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };
  const RELATIVE = /^-(\d{1,9})(ms|s|m|h|d|w)$/;
  const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
  const HELP = "epoch milliseconds, ISO 8601 (2024-01-01T00:00:00Z), 'now' or relative like -6h, -7d";

  /** Epoch ms of `text` at `now`, or null when the page cannot read it (the API may still). */
  function parse(text, now) {
    const t = String(text).trim();
    if (t === "now") return now;
    const rel = RELATIVE.exec(t);
    if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2]];
    if (/^-?\d{1,16}$/.test(t)) return Number(t);
    const m = ISO.exec(t);
    if (!m) return null;
    const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "0", zone] = m;
    let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Math.floor(Number("0." + frac) * 1000));
    if (zone && zone.toUpperCase() !== "Z") {
      const sign = zone[0] === "-" ? -1 : 1, digits = zone.slice(1).replace(":", "");
      ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60e3;
    }
    return Number.isFinite(ms) ? ms : null;
  }

  /** `2023-11-14T22:00:00Z` (milliseconds only when there are any). */
  function iso(ms) {
    if (ms == null) return "–";
    const date = new Date(ms);  // beyond ±8.64e15 ms a Date is invalid (toISOString would throw)
    return Number.isNaN(date.getTime()) ? "out of range" : date.toISOString().replace(".000Z", "Z");
  }

  /** The value of an `<input type="datetime-local">` showing `ms` in UTC (the page's time zone). */
  function pickerValue(ms) {
    const date = new Date(ms == null ? NaN : ms);
    return Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 ? "" : date.toISOString().slice(0, 19);
  }

  /** Epoch ms of a datetime-local value, read as UTC. */
  function fromPicker(value) {
    return value ? parse(value.length === 16 ? value + ":00Z" : value + "Z", 0) : null;
  }

  /** A preset range like 6h, 90m or 7d: its length in ms, or null. */
  function presetMs(range) {
    const m = /^(\d{1,6})(m|h|d|w)$/.exec(range || "");
    return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
  }

  return { parse, iso, pickerValue, fromPicker, presetMs, HELP };
})();
