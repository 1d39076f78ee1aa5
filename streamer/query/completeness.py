"""Completeness questions: samples stored per site and hour against what the points' collect_interval
promises (views of migration 007), and what the repair loop did (``sync_runs`` of kind ``repair``).

Pure builders and shapers, like ``streamer.query.sql``; ``QueryService`` runs them. Hours are whole
UTC hours ``[h, h + 1 h)``; an hour that holds no sample at all has no row and counts as 0 stored.
"""

from __future__ import annotations

from typing import Any

from streamer.query.sql import Query

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_RANGE_MS = 31 * DAY_MS  # one answer holds every hour of its range
STATUS_CACHE_S = 300.0  # how long the status answer's 24 h completeness is reused


def hour_floor(ms: int) -> int:
    return ms - ms % HOUR_MS


def hour_span(start_ms: int, end_ms: int) -> tuple[int, int]:
    """``[start, end)`` widened to whole hours."""
    return hour_floor(start_ms), -(-end_ms // HOUR_MS) * HOUR_MS


def stored_per_hour(db: str, site: str, start_ms: int, end_ms: int) -> Query:
    """Per hour of ``[start, end)`` (whole hours): ``stored``, distinct samples with each point capped at
    what it promises (as ``completeness_1h`` counts them: a point sending faster than its interval does
    not make up for a silent one), and ``samples``, every distinct sample of the site uncapped, points
    without a collect_interval too: what a repair brought back is measured by the second (README)."""
    sql = f"""
        SELECT toInt64(toUnixTimestamp(r.bucket)) * 1000 AS hour,
               sum(least(r.samples, ifNull(e.expected, 0))) AS stored, sum(r.samples) AS samples
        FROM
        (
            SELECT point, toStartOfHour(ts) AS bucket, toUInt64(uniqExact(ts)) AS samples
            FROM {db}.timeseries_raw
            WHERE site = {{site:String}}
              AND ts >= fromUnixTimestamp64Milli({{start:Int64}}, 'UTC')
              AND ts < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC')
            GROUP BY point, bucket
        ) AS r
        LEFT JOIN (SELECT point, expected FROM {db}.point_expected_1h WHERE site = {{site:String}}) AS e
            ON r.point = e.point
        GROUP BY hour ORDER BY hour"""
    return sql, {"site": site, "start": start_ms, "end": end_ms}


def expected_per_hour(db: str, site: str | None = None) -> Query:
    """Per site: samples per hour its collected points promise, and how many points that is."""
    where = "WHERE site = {site:String}" if site is not None else ""
    sql = f"""
        SELECT site, sum(expected) AS expected, count() AS points
        FROM {db}.point_expected_1h {where}
        GROUP BY site ORDER BY site"""
    return sql, ({"site": site} if site is not None else {})


def stored_per_site(db: str, start_ms: int, end_ms: int) -> Query:
    """Per site: capped distinct samples stored in the whole hours of ``[start, end)``."""
    sql = f"""
        SELECT site, sum(stored) AS stored
        FROM {db}.completeness_1h
        WHERE bucket >= toDateTime(intDiv({{start:Int64}}, 1000), 'UTC')
          AND bucket < toDateTime(intDiv({{end:Int64}}, 1000), 'UTC')
        GROUP BY site ORDER BY site"""
    return sql, {"start": start_ms, "end": end_ms}


def repairs_per_site(db: str, since_ms: int) -> Query:
    """Per site, since ``since_ms``: repair windows synced, their API requests, samples recovered."""
    sql = f"""
        SELECT site, countIf(status = 'ok') AS windows, sum(api_calls) AS api_calls,
               sum(samples_recovered) AS recovered
        FROM {db}.sync_runs FINAL
        WHERE kind = 'repair' AND started_at_ms >= {{since:Int64}}
        GROUP BY site ORDER BY site"""
    return sql, {"since": since_ms}


def read_from(db: str, site: str) -> Query:
    """The earliest instant an ok incremental or backfill window of the site read: hours before it
    were never fetched, so nothing there is for a repair to recover."""
    sql = f"""
        SELECT minOrNull(window_start_ms) FROM {db}.sync_runs FINAL
        WHERE site = {{site:String}} AND status = 'ok' AND kind != 'repair'"""
    return sql, {"site": site}


def ratio(stored: int, expected: int) -> float | None:
    """Stored over expected, None when nothing is expected (no collected point with an interval)."""
    return round(min(stored, expected) / expected, 6) if expected > 0 else None


def shape_hours(
    site: str,
    start_ms: int,
    end_ms: int,
    per_hour: int,
    points: int,
    rows: list[tuple[Any, ...]],
    first_read: int | None = None,
) -> dict[str, Any]:
    """The answer of ``GET /api/v1/sites/{site}/completeness``: every whole hour of the range."""
    stored = {int(hour): (int(count), int(samples)) for hour, count, samples in rows}
    counts = [(h, *stored.get(h, (0, 0))) for h in range(start_ms, end_ms, HOUR_MS)]
    hours = [
        {"hour": h, "stored": n, "samples": all_n, "expected": per_hour, "completeness": ratio(n, per_hour)}
        for h, n, all_n in counts
    ]
    total_stored = sum(n for _, n, _ in counts)
    total = per_hour * len(counts)
    return {
        "site": site,
        "start": start_ms,
        "end": end_ms,
        "points": points,
        "expected_per_hour": per_hour,
        "stored": total_stored,
        "expected": total,
        "completeness": ratio(total_stored, total),
        "read_from": first_read,
        "hours": hours,
    }
