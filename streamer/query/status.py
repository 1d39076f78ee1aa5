"""The health and status answers: what every open page polls, so each costly part is reused a while.

``StatusReport`` reads through the query service's own read-only session (``Reads``) and shapes the
answers; it writes nothing. Three caches bound what a page polling every few seconds costs ClickHouse:
the whole answer for ``api_status_cache_s`` (one computation at a time), the exact row counts for
``EXACT_ROWS_CACHE_S`` and the last day's completeness for ``completeness.STATUS_CACHE_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from streamer.errors import SinkTransientError, StreamerError
from streamer.query import completeness as cq
from streamer.query import sql
from streamer.query.kafka_status import KafkaProbe
from streamer.settings import Settings
from streamer.sink.client import describe_target
from streamer.times import now_ms

log = logging.getLogger(__name__)

EXACT_ROWS_CACHE_S = 60.0  # how long the status answer's exact row counts are reused


class Reads(Protocol):
    """What the report needs of the query service: its settings, Kafka probe and read-only queries."""

    settings: Settings
    kafka: KafkaProbe

    async def rows(self, query: sql.Query) -> list[tuple[Any, ...]]: ...

    async def scalar(self, query: sql.Query) -> Any: ...

    async def sites(self) -> dict[str, Any]: ...


class StatusReport:
    """Health and per-site status of the pipeline, from ClickHouse and Kafka."""

    def __init__(self, reads: Reads, db: str) -> None:
        self._reads = reads
        self._db = db
        self._lock = asyncio.Lock()
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._rows_cache: tuple[float, tuple[int, dict[str, int]]] | None = None
        self._completeness_cache: tuple[float, dict[str, dict[str, Any]]] | None = None

    async def clickhouse_health(self) -> dict[str, Any]:
        target = describe_target(self._reads.settings)
        try:
            version = await self._reads.scalar(sql.schema_version(self._db))
        except StreamerError as exc:
            return {"reachable": False, "target": target, "schema_version": None, "error": str(exc)[:300]}
        return {"reachable": True, "target": target, "schema_version": int(version or 0), "error": None}

    async def health(self) -> dict[str, Any]:
        clickhouse, kafka = await asyncio.gather(self.clickhouse_health(), self._reads.kafka.snapshot())
        ok = clickhouse["reachable"] and kafka["reachable"]
        return {
            "status": "ok" if ok else "degraded" if clickhouse["reachable"] else "down",
            "clickhouse": clickhouse,
            "kafka": {"reachable": kafka["reachable"], "error": kafka["error"]},
            "consumer_lag": kafka["total_lag"],
            "dlq_depth": kafka["dlq_depth"],
        }

    async def status(self) -> dict[str, Any]:
        """Per site: last sync, watermark age, last error, rows; Kafka lag and DLQ; ClickHouse state.
        Callers within ``api_status_cache_s`` of the last answer share it (one computation at a time)."""
        async with self._lock:
            cached = self._cache
            if cached is not None and time.monotonic() - cached[0] < self._reads.settings.api_status_cache_s:
                return cached[1]
            answer = await self._fresh()
            self._cache = (time.monotonic(), answer)
            return answer

    async def _fresh(self) -> dict[str, Any]:
        clickhouse, kafka = await asyncio.gather(self.clickhouse_health(), self._reads.kafka.snapshot())
        sites: list[dict[str, Any]] = []
        total_rows = stored_rows = None
        if clickhouse["reachable"]:
            sites, total_rows = await self._sites()
            stored_rows = sum(s["rows_stored"] for s in sites)
        return {
            "generated_at": now_ms(),
            "sites": sites,
            "kafka": kafka,
            "clickhouse": clickhouse | {"rows": total_rows, "rows_stored": stored_rows},
        }

    async def _sites(self) -> tuple[list[dict[str, Any]], int]:
        now = now_ms()
        try:
            runs = await self._reads.rows(sql.sync_status(self._db, now - 3_600_000))
        except SinkTransientError as exc:
            log.warning("sync_runs unreadable: %s", exc)
            runs = []
        stored = dict(await self._reads.rows(sql.rows_per_site(self._db)))
        counted_at, counts = await self._exact_rows()
        points = {s["site"]: s for s in (await self._reads.sites())["sites"]}
        by_site: dict[str, dict[str, Any]] = {
            name: site_row(name, points.get(name), int(counts.get(name, 0)))
            | {"rows_stored": int(stored.get(name, 0)), "rows_counted_at": counted_at}
            for name in set(points) | set(counts) | set(stored)
        }
        try:
            completeness = await self._completeness(now)
        except SinkTransientError as exc:  # e.g. migration 007 not applied yet
            log.warning("completeness unreadable: %s", exc)
            completeness = {}
        for name, values in completeness.items():
            by_site.setdefault(name, site_row(name, None, 0)).update(values)
        for run in runs:
            with_run(by_site.setdefault(run[0], site_row(run[0], None, 0)), run, now)
        return [by_site[k] for k in sorted(by_site)], sum(int(v) for v in counts.values())

    async def _exact_rows(self) -> tuple[int, dict[str, int]]:
        """Per site the exact samples stored (duplicates collapsed), and when they were counted.

        Kept for ``EXACT_ROWS_CACHE_S``: before merges FINAL costs seconds for a day of a 4,583-point
        site (bench/counts.py), and the page asks for the status every few seconds."""
        cached = self._rows_cache
        if cached is not None and time.monotonic() - cached[0] < EXACT_ROWS_CACHE_S:
            return cached[1]
        at = now_ms()
        rows = await self._reads.rows(sql.rows_per_site(self._db, exact=True))
        counts = {str(s): int(n) for s, n in rows}
        self._rows_cache = (time.monotonic(), (at, counts))
        return at, counts

    async def _completeness(self, now: int) -> dict[str, dict[str, Any]]:
        """Per site: completeness of the last 24 whole hours; repair windows, requests, recovered.

        Kept for ``cq.STATUS_CACHE_S``: a day of a 4,583-point site takes ClickHouse seconds to count
        (bench/completeness.py), and the page asks for the status every few seconds."""
        cached = self._completeness_cache
        if cached is not None and time.monotonic() - cached[0] < cq.STATUS_CACHE_S:
            return cached[1]
        end = cq.hour_floor(now)
        expected = {s: int(e) for s, e, _ in await self._reads.rows(cq.expected_per_hour(self._db))}
        stored = dict(await self._reads.rows(cq.stored_per_site(self._db, end - cq.DAY_MS, end)))
        repairs = {
            r[0]: r[1:] for r in await self._reads.rows(cq.repairs_per_site(self._db, now - cq.DAY_MS))
        }
        answer: dict[str, dict[str, Any]] = {}
        for site in set(expected) | set(repairs):
            windows, calls, recovered = repairs.get(site, (0, 0, 0))
            answer[site] = {
                "completeness_24h": cq.ratio(int(stored.get(site, 0)), 24 * expected.get(site, 0)),
                "repair_windows_24h": int(windows),
                "repair_api_calls_24h": int(calls),
                "samples_recovered_24h": int(recovered),
            }
        self._completeness_cache = (time.monotonic(), answer)
        return answer


def with_run(row: dict[str, Any], run: tuple[Any, ...], now: int) -> None:
    """Fill a site's row from its newest sync run (``sql.sync_status``'s columns)."""
    _, sync_id, at, status, watermark, ok_runs, error, error_at, recent = run
    row |= {"last_sync_id": sync_id, "last_sync_at": at, "last_status": status}
    row["watermark"] = watermark if ok_runs else None
    row["watermark_age_s"] = round((now - watermark) / 1000, 1) if ok_runs else None
    row["last_error"], row["last_error_at"] = (error, error_at) if error_at else (None, None)
    row["samples_last_hour"] = int(recent)


def site_row(site: str, points: dict[str, Any] | None, rows: int) -> dict[str, Any]:
    """A site's status row before its sync runs and completeness are known."""
    return {
        "site": site,
        "points": points["points"] if points else 0,
        "last_sample": points["last_sample"] if points else None,
        "rows": rows,
        "rows_stored": 0,
        "rows_counted_at": None,
        "last_sync_id": None,
        "last_sync_at": None,
        "last_status": None,
        "watermark": None,
        "watermark_age_s": None,
        "last_error": None,
        "last_error_at": None,
        "samples_last_hour": 0,
        "completeness_24h": None,
        "repair_windows_24h": 0,
        "repair_api_calls_24h": 0,
        "samples_recovered_24h": 0,
    }
