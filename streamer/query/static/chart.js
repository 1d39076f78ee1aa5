// The chart: uPlot (vendor/, v1.6.32) over the API's rows. One y-axis per unit (left, right, left, ...),
// the unit as the axis label; drag to zoom (the page turns the selection into a new range), hover for
// the values in the legend, which wraps; times in UTC like the rest of the page.
"use strict";

const Chart = (() => {
  const BASE = ["#2563eb", "#dc6803", "#067647", "#b42318", "#7a5af8", "#0e9384", "#c11574", "#475467"];
  const HEIGHT = 380;

  /** As many distinct colours as series: the base palette, then hues a golden angle apart. */
  function color(i) {
    return i < BASE.length ? BASE[i] : `hsl(${Math.round((i * 137.508) % 360)}, 65%, 42%)`;
  }

  function unitKey(unit) { return "unit:" + (unit || ""); }

  /** uPlot's aligned columns: every timestamp once, each point's value there or null (a gap); for
   * rollups also each point's min and max columns (the band drawn behind the mean). */
  function align(points, rows) {
    const xs = [...new Set(rows.map((r) => r.timestamp))].sort((a, b) => a - b);
    const at = new Map(xs.map((t, i) => [t, i]));
    const column = () => points.map(() => new Array(xs.length).fill(null));
    const values = column(), rolled = rows.length > 0 && rows[0].min != null;
    const mins = rolled ? column() : null, maxs = rolled ? column() : null;
    const index = new Map(points.map((p, i) => [p, i]));
    for (const r of rows) {
      const p = index.get(r.point_name), t = at.get(r.timestamp);
      values[p][t] = r.value;
      if (rolled) { mins[p][t] = r.min; maxs[p][t] = r.max; }
    }
    return { data: [xs, ...values], bands: rolled ? points.map((_, i) => ({ min: mins[i], max: maxs[i] })) : [] };
  }

  /** Draws each rollup series' min..max band under the lines, clipped to the plot area. */
  function bandHook(bands) {
    return (u) => {
      const ctx = u.ctx, xs = u.data[0], { left, top, width, height } = u.bbox;
      ctx.save(); ctx.beginPath(); ctx.rect(left, top, width, height); ctx.clip();
      ctx.globalAlpha = 0.13;
      bands.forEach((band, i) => {
        const series = u.series[i + 1];
        if (!series.show) return;
        ctx.fillStyle = color(i);
        const x = (k) => u.valToPos(xs[k], "x", true), y = (v) => u.valToPos(v, series.scale, true);
        for (let k = 0; k < xs.length; k++) {  // one polygon per run of buckets with data
          if (band.min[k] == null) continue;
          let end = k;
          while (end + 1 < xs.length && band.min[end + 1] != null) end++;
          ctx.beginPath(); ctx.moveTo(x(k), y(band.max[k]));
          for (let j = k + 1; j <= end; j++) ctx.lineTo(x(j), y(band.max[j]));
          for (let j = end; j >= k; j--) ctx.lineTo(x(j), y(band.min[j]));
          ctx.closePath(); ctx.fill();
          k = end;
        }
      });
      ctx.restore();
    };
  }

  /** The x range drawn: the asked range, widened to the first bucket (a rollup bucket starts before
   * the range it overlaps, and must not be drawn left of the axis); `fit` narrows it to the data. */
  function xRange(answer, xs, fit) {
    if (!xs.length) return [answer.start, answer.end];
    if (fit) return xs.length > 1 ? [xs[0], xs.at(-1)] : [xs[0] - 60e3, xs[0] + 60e3];
    return [Math.min(answer.start, xs[0]), answer.end];
  }

  /** Tick labels in UTC, 24-hour: the date under the first tick of each day; days alone on long spans. */
  function timeTicks(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map((v, i) => {
      const t = new Date(v).toISOString(), day = t.slice(0, 10);
      if (span > 4 * 86400e3) return t.slice(5, 10) + (t.slice(11, 16) === "00:00" ? "" : " " + t.slice(11, 16));
      const time = span < 600e3 ? t.slice(11, 19) : t.slice(11, 16);
      return i === 0 || new Date(splits[i - 1]).toISOString().slice(0, 10) !== day ? time + "\n" + day : time;
    });
  }

  function fmt(v) { return v == null ? "–" : Number(Number(v).toPrecision(6)).toString(); }

  /** Units in order of first use, each with its axis side (3 = left, 1 = right) and its points. */
  function unitAxes(points, units) {
    const out = [];
    points.forEach((p) => {
      const unit = units[p] || "";
      let axis = out.find((a) => a.unit === unit);
      if (!axis) out.push(axis = { unit, side: out.length % 2 ? "right" : "left", points: [] });
      axis.points.push(p);
    });
    return out;
  }

  /** A unit's y range: its values and, for rollups, its points' bands, with uPlot's usual padding. */
  function yRange(axis, points, bands) {
    return (u, lo, hi) => {
      axis.points.forEach((p) => {
        const band = bands[points.indexOf(p)];
        if (!band) return;
        for (const v of band.min) if (v != null && !(v >= lo)) lo = v;
        for (const v of band.max) if (v != null && !(v <= hi)) hi = v;
      });
      return lo == null ? [0, 1] : uPlot.rangeNum(lo, hi, 0.1, true);
    };
  }

  function options(width, points, units, axes, range, bands, onZoom) {
    const utc = (ms) => uPlot.tzDate(new Date(ms), "Etc/UTC");
    return {
      width, height: HEIGHT, ms: 1, tzDate: utc,
      // room for the last time label when no axis is on the right
      padding: [12, axes.some((a) => a.side === "right") ? 8 : 44, 0, 8],
      scales: Object.assign({ x: { time: true, auto: false, range: () => range } },
        Object.fromEntries(axes.map((a) => [unitKey(a.unit), { auto: true, range: yRange(a, points, bands) }]))),
      series: [{ label: "time (UTC)", value: (u, v) => v == null ? "–" : Times.iso(v) }].concat(
        points.map((p, i) => ({
          label: p + (units[p] ? " [" + units[p] + "]" : ""), scale: unitKey(units[p]), stroke: color(i),
          width: 1.5, spanGaps: false, value: (u, v) => fmt(v), points: { size: 4 },
        }))),
      axes: [{ space: 80, values: timeTicks }].concat(axes.map((a, k) => ({
        scale: unitKey(a.unit), label: a.unit || "(no unit)", side: a.side === "left" ? 3 : 1,
        grid: { show: k === 0 }, size: 60, labelSize: 18,
      }))),
      cursor: { drag: { x: true, y: false, setScale: false }, bind: { dblclick: () => null } },
      legend: { live: true },
      hooks: {
        drawClear: bands.length ? [bandHook(bands)] : [],
        setSelect: [(u) => {
          if (u.select.width < 4) return;
          const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onZoom(Math.floor(lo), Math.ceil(hi));
        }],
      },
    };
  }

  /** Draw `answer` (the samples API's JSON) into `box`; returns what was drawn, for the page's state. */
  function draw(box, answer, units, fit, onZoom, onZoomOut) {
    const points = answer.points;
    const { data, bands } = align(points, answer.rows);
    const range = xRange(answer, data[0], fit);
    const axes = unitAxes(points, units);
    if (box.plot) box.plot.destroy();
    box.replaceChildren();
    const width = Math.max(320, box.clientWidth || 900);
    box.plot = new uPlot(options(width, points, units, axes, range, bands, onZoom), data, box);
    box.plot.over.addEventListener("dblclick", onZoomOut);
    return { xMin: range[0], xMax: range[1], axes, bands: bands.length };
  }

  function resize(box) {
    if (box.plot) box.plot.setSize({ width: Math.max(320, box.clientWidth), height: HEIGHT });
  }

  return { draw, resize, color, unitAxes };
})();
