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

  /** uPlot's aligned columns: every timestamp once, each point's value there or null (a gap). */
  function align(points, rows) {
    const xs = [...new Set(rows.map((r) => r.timestamp))].sort((a, b) => a - b);
    const at = new Map(xs.map((t, i) => [t, i]));
    const columns = points.map(() => new Array(xs.length).fill(null));
    const index = new Map(points.map((p, i) => [p, i]));
    for (const r of rows) columns[index.get(r.point_name)][at.get(r.timestamp)] = r.value;
    return [xs, ...columns];
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

  function options(width, points, units, axes, range, onZoom) {
    const utc = (ms) => uPlot.tzDate(new Date(ms), "Etc/UTC");
    return {
      width, height: HEIGHT, ms: 1, tzDate: utc,
      // room for the last time label when no axis is on the right
      padding: [12, axes.some((a) => a.side === "right") ? 8 : 44, 0, 8],
      scales: Object.assign({ x: { time: true, auto: false, range: () => range } },
        Object.fromEntries(axes.map((a) => [unitKey(a.unit), { auto: true }]))),
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
    const data = align(points, answer.rows);
    const range = xRange(answer, data[0], fit);
    const axes = unitAxes(points, units);
    if (box.plot) box.plot.destroy();
    box.replaceChildren();
    const width = Math.max(320, box.clientWidth || 900);
    box.plot = new uPlot(options(width, points, units, axes, range, onZoom), data, box);
    box.plot.over.addEventListener("dblclick", onZoomOut);
    return { xMin: range[0], xMax: range[1], axes };
  }

  function resize(box) {
    if (box.plot) box.plot.setSize({ width: Math.max(320, box.clientWidth), height: HEIGHT });
  }

  return { draw, resize, color, unitAxes };
})();
