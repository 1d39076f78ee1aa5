"""SQL text of every question the query service asks ClickHouse (caller SQL: ``readonly``, ``sqlguard``).

Pure: builders return ``(sql, parameters)`` with server-side bound parameters (``{name:Type}``), so no
caller value is ever pasted into SQL text. Table names are qualified with the configured database.
"""

from __future__ import annotations

from typing import Any, Final

from streamer.query.params import BUCKET_MS, TimeRange

Query = tuple[str, dict[str, Any]]

_RANGE = (
    "ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')"
    " AND ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
)
# The raw rows of the buckets _BUCKET_RANGE selects (the first bucket may begin before start).
_ALIGNED_RANGE = (
    "ts >= toStartOfInterval(fromUnixTimestamp64Milli({start:Int64}, 'UTC'),"
    " INTERVAL {bucket_s:UInt32} SECOND)"
    " AND ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
)
_BUCKET_RANGE = (
    "bucket >= toStartOfInterval(fromUnixTimestamp64Milli({start:Int64}, 'UTC'),"
    " INTERVAL {bucket_s:UInt32} SECOND)"
    " AND bucket < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
)
ROLLUP_VIEWS: Final = {"5m": "rollup_5m_v", "1h": "rollup_1h_v"}
ROLLUP_TABLES: Final = {"1h": "rollup_1h"}  # 5-minute buckets are computed from timeseries_raw


def quote_db(database: str) -> str:
    return "`" + database.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _range_params(site: str, points: list[str], time_range: TimeRange) -> dict[str, Any]:
    return {"site": site, "points": points, "start": time_range.start_ms, "end": time_range.end_ms}


def sites(db: str) -> Query:
    """Per site: configured points, points with data, and the newest sample time."""
    sql = f"""
        SELECT site, sum(configured) AS points, sum(has_data) AS points_with_data,
               maxOrNull(last_ms) AS last_sample
        FROM (
            SELECT site, point, max(configured) AS configured, max(has_data) AS has_data,
                   maxOrNull(last_ms) AS last_ms
            FROM (
                SELECT site, point, toUInt8(deleted = 0) AS configured, toUInt8(0) AS has_data,
                       CAST(NULL, 'Nullable(Int64)') AS last_ms
                FROM {db}.points FINAL
                UNION ALL
                SELECT site, point, toUInt8(0), toUInt8(1), toUnixTimestamp64Milli(ts)
                FROM {db}.latest_values FINAL
            )
            GROUP BY site, point
        )
        GROUP BY site ORDER BY site"""
    return sql, {}


def known_points(db: str, site: str) -> Query:
    """Every point name the site ever had: configured (even removed since) or with samples."""
    sql = f"""
        SELECT DISTINCT point FROM (
            SELECT point FROM {db}.points WHERE site = {{site:String}}
            UNION ALL
            SELECT point FROM {db}.latest_values WHERE site = {{site:String}}
        )"""
    return sql, {"site": site}


def points(db: str, site: str, marker_tags: list[str], kv_tags: dict[str, str]) -> Query:
    """The site's current points that carry every marker tag and every ``key: value`` tag."""
    where = ["site = {site:String}", "deleted = 0"]
    params: dict[str, Any] = {"site": site}
    if marker_tags:
        where.append("hasAll(marker_tags, {tags:Array(String)})")
        params["tags"] = marker_tags
    for i, (key, value) in enumerate(sorted(kv_tags.items())):
        where.append(f"kv_tags[{{k{i}:String}}] = {{v{i}:String}} AND mapContains(kv_tags, {{k{i}:String}})")
        params[f"k{i}"], params[f"v{i}"] = key, value
    sql = f"""
        SELECT point, collect_enabled, collect_interval, point_type, unit, marker_tags, kv_tags, metadata
        FROM {db}.points FINAL WHERE {" AND ".join(where)} ORDER BY point"""
    return sql, params


def raw_count(db: str, site: str, points: list[str], time_range: TimeRange, exact: bool = False) -> Query:
    """The raw rows: exact with FINAL, else an upper bound (duplicates not yet merged are counted)."""
    sql = f"""SELECT count() FROM {db}.timeseries_raw{" FINAL" if exact else ""}
        WHERE site = {{site:String}} AND point IN {{points:Array(String)}} AND {_RANGE}"""
    return sql, _range_params(site, points, time_range)


def rollup_count(db: str, resolution: str, site: str, points: list[str], time_range: TimeRange) -> Query:
    """An upper bound of the rollup rows, without grouping: rollup_1h's rows before the replacing merge
    collapses recomputed buckets; for 5m (computed from raw) the raw rows, each in one bucket."""
    params = _range_params(site, points, time_range) | {"bucket_s": BUCKET_MS[resolution] // 1000}
    if resolution == "5m":
        sql = f"""SELECT count() FROM {db}.timeseries_raw
        WHERE site = {{site:String}} AND point IN {{points:Array(String)}} AND {_ALIGNED_RANGE}"""
    else:
        sql = f"""SELECT count() FROM {db}.{ROLLUP_TABLES[resolution]}
        WHERE site = {{site:String}} AND point IN {{points:Array(String)}} AND {_BUCKET_RANGE}"""
    return sql, params


def raw_samples(db: str, site: str, points: list[str], time_range: TimeRange, limit: int) -> Query:
    """Raw samples, exact (FINAL collapses replays), ordered by point then time."""
    sql = f"""
        SELECT point AS point_name, toUnixTimestamp64Milli(ts) AS timestamp, value
        FROM {db}.timeseries_raw FINAL
        WHERE site = {{site:String}} AND point IN {{points:Array(String)}} AND {_RANGE}
        ORDER BY point, ts LIMIT {{limit:UInt64}}"""
    return sql, _range_params(site, points, time_range) | {"limit": limit}


def rollup_samples(
    db: str, resolution: str, site: str, points: list[str], time_range: TimeRange, limit: int
) -> Query:
    """Rollup buckets that overlap [start, end) (the first may begin before start); value is the mean."""
    sql = f"""
        SELECT point AS point_name, toInt64(toUnixTimestamp(bucket)) * 1000 AS timestamp, avg AS value,
               min, max, count
        FROM {db}.{ROLLUP_VIEWS[resolution]}
        WHERE site = {{site:String}} AND point IN {{points:Array(String)}} AND {_BUCKET_RANGE}
        ORDER BY point, bucket LIMIT {{limit:UInt64}}"""
    params = _range_params(site, points, time_range) | {
        "bucket_s": BUCKET_MS[resolution] // 1000,
        "limit": limit,
    }
    return sql, params


def latest(db: str, site: str, points: list[str]) -> Query:
    where = "site = {site:String}" + (" AND point IN {points:Array(String)}" if points else "")
    sql = f"""
        SELECT point AS point_name, toUnixTimestamp64Milli(ts) AS timestamp, value
        FROM {db}.latest_values FINAL WHERE {where} ORDER BY point"""
    return sql, {"site": site, "points": points}


def gaps(db: str, site: str, time_range: TimeRange, tolerance: float) -> Query:
    """Per configured point with a collect interval: the spans between consecutive samples (the range's
    ends count as samples) longer than ``tolerance`` intervals. Points without gaps are left out.

    Bounded memory: consecutive samples are paired by a one-row window read in the table's order
    (site, point, ts), and only the pairs that are gaps leave it; the tail to the range's end comes
    from each point's newest sample. Duplicates not yet merged pair with a span of 0 (no gap)."""
    raw = f"{db}.timeseries_raw WHERE site = {{site:String}} AND {_RANGE}"
    sql = f"""
        WITH configured AS (
            SELECT point, toInt64(assumeNotNull(collect_interval)) * 1000 AS interval_ms
            FROM {db}.points FINAL
            WHERE site = {{site:String}} AND deleted = 0 AND collect_enabled = 1 AND collect_interval > 0
        )
        SELECT point, any(interval_ms) AS interval_ms, arraySort(groupArray((a, b))) AS spans
        FROM (
            SELECT w.point AS point, c.interval_ms AS interval_ms, w.a AS a, w.b AS b
            FROM (
                SELECT point, toUnixTimestamp64Milli(ts) AS b,
                       lagInFrame(b, 1, {{start:Int64}}) OVER (
                           PARTITION BY site, point ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW
                       ) AS a
                FROM {raw}
            ) AS w
            INNER JOIN configured AS c ON w.point = c.point
            WHERE w.b - w.a > c.interval_ms * {{tolerance:Float64}}
            UNION ALL
            SELECT c.point, c.interval_ms, if(m.seen = 1, m.last, {{start:Int64}}), {{end:Int64}}
            FROM configured AS c
            LEFT JOIN (
                SELECT point, max(toUnixTimestamp64Milli(ts)) AS last, toUInt8(1) AS seen FROM {raw}
                GROUP BY point
            ) AS m ON c.point = m.point
            WHERE {{end:Int64}} - if(m.seen = 1, m.last, {{start:Int64}})
                  > c.interval_ms * {{tolerance:Float64}}
        )
        GROUP BY point ORDER BY point"""
    params = {"site": site, "start": time_range.start_ms, "end": time_range.end_ms, "tolerance": tolerance}
    return sql, params


def gap_rows(
    rows: list[tuple[str, int, list[tuple[int, int]]]],
    start_ms: int | None = None,
    until_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Shape the gap query's rows: each span is the last sample before a hole and the first after it
    (or the range's ends); ``missing`` is how many samples the interval promised in between, and a
    point is ``silent`` when its one span is the whole checked range (no sample at all)."""
    out = []
    for point, interval_ms, spans in rows:
        shaped = [
            {"start": a, "end": b, "missing": max(1, round((b - a) / interval_ms) - 1)} for a, b in spans
        ]
        silent = start_ms is not None and [(a, b) for a, b in spans] == [(start_ms, until_ms)]
        out.append(
            {
                "point_name": point,
                "collect_interval_s": interval_ms // 1000,
                "silent": silent,
                "missing": sum(g["missing"] for g in shaped),
                "gaps": shaped,
            }
        )
    return out


def gap_summary(points: list[dict[str, Any]], judged: int, not_judged: int, worst: int = 5) -> dict[str, Any]:
    """Counts of the judged points (complete, with gaps, silent) and the worst points with gaps."""
    silent = sum(1 for p in points if p["silent"])
    holed = sorted((p for p in points if not p["silent"]), key=lambda p: (-p["missing"], p["point_name"]))
    return {
        "points_judged": judged,
        "complete": judged - len(points),
        "with_gaps": len(holed),
        "silent": silent,
        "not_judged": not_judged,
        "missing_samples": sum(p["missing"] for p in points),
        "worst": [
            {"point_name": p["point_name"], "gaps": len(p["gaps"]), "missing": p["missing"]}
            for p in holed[:worst]
        ],
    }


def gap_points(db: str, site: str) -> Query:
    """The site's collected points: judged by gaps (with a collect interval) and not (without one)."""
    sql = f"""
        SELECT countIf(ifNull(collect_interval, 0) > 0), countIf(ifNull(collect_interval, 0) <= 0)
        FROM {db}.points FINAL WHERE site = {{site:String}} AND deleted = 0 AND collect_enabled = 1"""
    return sql, {"site": site}


_MOVES_WATERMARK = "status = 'ok' AND kind != 'repair'"


def watermark(db: str, site: str) -> Query:
    """How far the site was fetched: the end of its newest ok window that moves the watermark
    (incremental or backfill; a repair revisits the past and never moves it), and how many there are."""
    sql = f"""
        SELECT countIf({_MOVES_WATERMARK}), maxIf(window_end_ms, {_MOVES_WATERMARK})
        FROM {db}.sync_runs FINAL WHERE site = {{site:String}}"""
    return sql, {"site": site}


def newest_sample(db: str, site: str) -> Query:
    """The site's newest stored sample (ms), or NULL without any."""
    sql = f"""SELECT maxOrNull(toUnixTimestamp64Milli(ts)) FROM {db}.latest_values FINAL
        WHERE site = {{site:String}}"""
    return sql, {"site": site}


def sync_status(db: str, since_ms: int) -> Query:
    """Per site: the latest producer window, the watermark (end of the newest ok window), last error."""
    sql = f"""
        SELECT site,
               argMax(sync_id, started_at_ms) AS last_sync_id,
               max(started_at_ms) AS last_sync_at,
               argMax(status, started_at_ms) AS last_status,
               maxIf(window_end_ms, {_MOVES_WATERMARK}) AS watermark,
               countIf({_MOVES_WATERMARK}) AS ok_runs,
               argMaxIf(error, started_at_ms, status != 'ok') AS last_error,
               maxIf(started_at_ms, status != 'ok') AS last_error_at,
               sumIf(samples_published, started_at_ms >= {{since:Int64}}) AS samples_last_hour
        FROM {db}.sync_runs FINAL GROUP BY site ORDER BY site"""
    return sql, {"since": since_ms}


def rows_per_site(db: str, exact: bool = False) -> Query:
    """Per site: samples stored; ``exact`` after duplicate collapse (FINAL: 2.9 s for a day of a
    4,583-point site before merges, 54 ms after, bench/counts.py), else rows before merges (cheap,
    and shrinking as merges collapse replays)."""
    final = " FINAL" if exact else ""
    return f"SELECT site, count() FROM {db}.timeseries_raw{final} GROUP BY site ORDER BY site", {}


def schema_version(db: str) -> Query:
    return f"SELECT max(version) FROM {db}.schema_migrations", {}
