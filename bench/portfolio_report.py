"""What bench/portfolio.py prints, and its check of the stores against the simulator's expected()."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamer.settings import Settings
from streamer.sim.config import SimConfig, parse_sites
from streamer.sim.model import expected
from tests.integration.processor import helpers as h

_TOTALS = """
SELECT count(), uniqExact(site, point, ts), sum(toInt64(round(value * 1000))),
       sum(CRC32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts)))))
FROM {db}.timeseries_raw FINAL
WHERE ts >= fromUnixTimestamp64Milli({start}) AND ts < fromUnixTimestamp64Milli({end})
  AND point NOT LIKE 'weather.%'
"""
_KEYS = "SELECT DISTINCT site, point FROM {db}.timeseries_raw WHERE point NOT LIKE 'weather.%'"


def _config(args: Any) -> SimConfig:
    return SimConfig(sites=parse_sites(str(args.sites)), points=args.points)


def _expected(config: SimConfig, start_ms: int, end_ms: int, part: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for site in config.sites:
        for k, v in expected(config, site, start_ms, end_ms)[part].items():
            totals[k] = totals.get(k, 0) + int(v)
    return totals


def check_stores(result: dict[str, Any]) -> dict[str, Any]:
    """Union totals of the stores over the window every site has published, against expected()."""
    runs, stores = result["runs"], result["stores"]
    start_ms, end_ms = max(runs.first_start.values()), min(runs.last_end.values())
    per_store, keys = [], []
    for store in stores:
        db = store.clickhouse_database
        row = h.clickhouse(store, _TOTALS.format(db=db, start=start_ms, end=end_ms))[0]
        per_store.append([int(x) for x in row])
        keys.append({(s, p) for s, p in h.clickhouse(store, _KEYS.format(db=db))})
    both = set.intersection(*keys) if len(keys) > 1 else set()
    union = [sum(row[i] for row in per_store) for i in range(4)]
    want = _expected(_config(result["args"]), start_ms, end_ms, "valid")
    wanted = [want["count"], want["count"], want["value_milli_sum"], want["key_checksum"]]
    return {
        "window": (start_ms, end_ms),
        "per_store": per_store,
        "union": union,
        "want": wanted,
        "keys_in_both": len(both),
        "exact": union == wanted and not both,
    }


def _visible(result: dict[str, Any], series: str) -> Any:
    """The steady window's samples' seconds to ``series``; those not seen by the end count as inf."""
    fresh = result["fresh"]
    _, _, start_ms, end_ms = result["steady"]
    ts = np.frombuffer(fresh.ts, dtype=np.int64)
    values = np.frombuffer(getattr(fresh, series), dtype=np.float64)[(ts >= start_ms) & (ts < end_ms)]
    missing = max(0, result["distinct"] - len(values))
    return np.concatenate([values, np.full(missing, np.inf)])


def _freshness(result: dict[str, Any]) -> list[str]:
    fresh = result["fresh"]
    _, _, start_ms, end_ms = result["steady"]
    visible, in_kafka = _visible(result, "visible"), _visible(result, "in_kafka")
    seen = int(np.isfinite(visible).sum())
    lines = [
        f"freshness of the {len(visible):,} samples timed {ms_span(start_ms, end_ms)} "
        f"({len(visible) - seen:,} not visible by the end of the drain: counted as infinitely late):"
    ]
    for label, values in (("→ visible (group commit)", visible), ("→ in Kafka", in_kafka)):
        if len(values):
            p50, p99, top = np.percentile(values, [50, 99, 100], method="inverted_cdf")
            lines.append(f"  sample time {label:26} p50 {p50:6.1f} s  p99 {p99:6.1f} s  max {top:6.1f} s")
    s: Settings = result["settings"]
    target = s.poll_interval_s + 10
    p99 = float(np.percentile(visible, 99, method="inverted_cdf")) if len(visible) else float("inf")
    lines.append(
        f"  target p99 <= poll {s.poll_interval_s:.0f} s + 10 s = {target:.0f} s: "
        f"{'met' if p99 <= target else 'NOT met'} (ace_clock_margin_s={s.ace_clock_margin_s:g}, "
        f"overlap_s={s.overlap_s}, batch_max_s={s.batch_max_s:g}, "
        f"overlap_skip_unchanged={s.overlap_skip_unchanged})"
    )
    lines.append(
        f"  not yet committed after the drain: {result['unresolved']:,}; records read after their commit: "
        f"{fresh.late_seen:,}"
    )
    return lines


def _intervals(result: dict[str, Any]) -> str:
    """Seconds between consecutive incremental windows of a site ending in the steady state."""
    _, _, start_ms, end_ms = result["steady"]
    last: dict[str, int] = {}
    gaps = []
    for site, end in sorted(result["runs"].ends, key=lambda x: x[1]):
        if site in last and start_ms <= end < end_ms:
            gaps.append((end - last[site]) / 1000)
        last[site] = end
    if not gaps:
        return "a site's windows: none ended in the steady state"
    p50, p99, top = np.percentile(gaps, [50, 99, 100], method="inverted_cdf")
    return f"a site's windows end every p50 {p50:.1f} s, p99 {p99:.1f} s, max {top:.1f} s (n={len(gaps)})"


def ms_span(start_ms: int, end_ms: int) -> str:
    return f"[{start_ms}, {end_ms}) ({(end_ms - start_ms) / 1000:.0f} s)"


def _processes(result: dict[str, Any], million: float) -> list[str]:
    t0, t1, *_ = result["steady"]
    lines = [
        f"{'process':11} {'CPU-s':>8} {'CPU-s/M':>8} {'peak MB':>8} {'final MB':>8} "
        f"{'1st min':>8} {'last min':>8} {'MB/min':>7} {'floor 1st/last 2 min':>21}"
    ]
    for series in result["series"]:
        cpu = series.cpu_between(t0, t1)
        r = series.rss_report(t0, t1)
        lines.append(
            f"{series.name:11} {cpu:8.1f} {cpu / million:8.2f} {r['peak']:8.0f} {r['final']:8.0f} "
            f"{r['first']:8.0f} {r['last']:8.0f} {r['slope']:+7.2f} "
            f"{r['floor_first']:10.0f} {r['floor_last']:10.0f}"
        )
    return lines


def print_report(result: dict[str, Any], seconds: float) -> None:
    args, s = result["args"], result["settings"]
    t0, t1, start_ms, end_ms = result["steady"]
    distinct = result["distinct"] = _expected(_config(args), start_ms, end_ms, "all")["count"]
    cycles = (t1 - t0) / s.poll_interval_s
    print(
        f"portfolio: {args.sites:,} sites x {args.points:,} points, poll {s.poll_interval_s:g} s, "
        f"{args.producers} producers (group), {args.processors} processors, lookback {s.initial_lookback_s} s"
    )
    print(f"caught up after {result['catchup_s']:.1f} s; steady state {t1 - t0:.0f} s ({cycles:.1f} cycles)")
    print(
        f"samples in the steady window: {distinct:,} distinct; served by the API in it: "
        f"{result['served']:,} (re-reads of overlap_s={s.overlap_s} included)"
    )
    print(_intervals(result))
    print("API requests per cycle (at the simulator):")
    for name, count in sorted(result["requests"].items()):
        print(f"  {name.removeprefix('requests '):40} {count / cycles:10.1f}  ({count:,} in all)")
    print(f"  {'total':40} {sum(result['requests'].values()) / cycles:10.1f}")
    for line in _freshness(result):
        print(line)
    print(f"CPU over the steady state per million distinct samples ({distinct / 1e6:.3f} M), RSS from /proc:")
    for line in _processes(result, distinct / 1e6 or 1):
        print(line)
    check = result["stores_check"]
    print(f"stores after the run, window {ms_span(*check['window'])}, count FINAL / distinct / sums:")
    for i, row in enumerate(check["per_store"], 1):
        print(f"  store {i}: count={row[0]:,} distinct={row[1]:,}")
    print(f"  union : {check['union']}\n  wanted: {check['want']}")
    print(f"  keys (site, point) in both stores: {check['keys_in_both']}")
    print(f"exit codes: {result['exit_codes']}")
    window = _visible(result, "visible")
    p50, p99 = np.percentile(window, [50, 99], method="inverted_cdf") if len(window) else (np.nan, np.nan)
    print(
        f"sites={args.sites} points={args.points} p50_s={p50:.1f} p99_s={p99:.1f} "
        f"exact={'true' if check['exact'] else 'false'} seconds={seconds:.0f}"
    )
