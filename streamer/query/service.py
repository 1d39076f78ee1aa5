"""The read-only query service: every question the API and the CLI ask ClickHouse.

ClickHouse calls are blocking, so each runs on the service's own worker threads (``offload``) and the
event loop never waits on them. Answers are plain JSON-ready dicts, identical for the HTTP API and the CLI.
Nothing here writes: the service's own statements are SELECTs on a client of its own whose session
is ``readonly=1`` with the API's limits (``own_settings``) — on the embedded engine a separate handle,
so a long read never waits on, or holds, the lock of the sink's handle and inserts keep their pace.
Caller SQL runs on yet another session (``streamer.query.readonly``); the health and status answers,
polled by every open page and cached, are ``streamer.query.status``'s.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import orjson
from clickhouse_connect.driver.client import Client

from streamer.errors import QueryError, SinkTransientError, StreamerError
from streamer.query import completeness as cq
from streamer.query import sql
from streamer.query.kafka_status import KafkaProbe
from streamer.query.params import BUCKET_MS, TimeRange, bucket_count, choose_resolution
from streamer.query.readonly import ReadOnlySql, SqlAnswer
from streamer.query.session import own_client
from streamer.query.status import StatusReport
from streamer.settings import Settings
from streamer.sink.client import release_client
from streamer.sink.errors import error_code, translate

T = TypeVar("T")


_LIMIT_ERRORS = {
    159: ("max_execution_time", "api_query_max_execution_s"),
    241: ("max_memory_usage", "api_query_max_memory_bytes"),
}


class QueryService:
    """Read-only access to the pipeline's ClickHouse tables (and a look at Kafka for status)."""

    def __init__(self, settings: Settings, kafka: KafkaProbe | None = None) -> None:
        self.settings = settings
        self._db = sql.quote_db(settings.clickhouse_database)
        self._client: Client | None = None
        self.kafka = kafka if kafka is not None else KafkaProbe(settings)
        self._status = StatusReport(self, self._db)
        # Its own threads: reads waiting on ClickHouse never take the default executor's workers,
        # which the processor's inserts run on.
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query")
        self._connect_lock = threading.Lock()
        # An embedded engine handle serves one call at a time: a second thread on a handle that is
        # streaming an answer breaks both (chdb: "No active streaming query", or blocks of two answers
        # interleaved, which the client's decoder meets as an IndexError). The server's HTTP client
        # runs concurrent queries.
        self._session_lock: AbstractContextManager[Any] = (
            threading.Lock() if settings.is_embedded_clickhouse else nullcontext()
        )
        self._readonly = ReadOnlySql(settings, self.offload)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self.offload(release_client, client)
        await self._readonly.close()
        self._executor.shutdown(wait=False)

    async def offload(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` on the service's own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    # ------------------------------------------------------------------------------------ plumbing
    def _connected(self) -> Client:
        # Connect lazily: a service built while ClickHouse is down still starts and answers /health.
        # Under the lock: the first requests arrive together on several threads, one handle for all.
        with self._connect_lock:
            if self._client is None:
                self._client = own_client(self.settings)
            return self._client

    def _rows_sync(self, query: sql.Query) -> list[tuple[Any, ...]]:
        text, params = query
        try:
            client = self._connected()
            with self._session_lock:
                return [tuple(row) for row in client.query(text, parameters=params).result_rows]
        except StreamerError:
            raise
        except Exception as exc:
            code = error_code(exc)
            if code in _LIMIT_ERRORS:
                name, setting = _LIMIT_ERRORS[code]
                value = getattr(self.settings, setting)
                raise QueryError(
                    f"{name} exceeded ({value}): narrow the range or ask fewer points "
                    f"(setting STREAMER_{setting.upper()})",
                    status=422,
                ) from exc
            # Our own statements are valid: any other failure is the server's state (down, not migrated).
            raise SinkTransientError(str(translate(exc, "query"))) from exc

    async def rows(self, query: sql.Query) -> list[tuple[Any, ...]]:
        """The rows of one of our own read-only statements (``streamer.query.sql``)."""
        return await self.offload(self._rows_sync, query)

    async def scalar(self, query: sql.Query) -> Any:
        rows = await self.rows(query)
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------------------------- answers
    async def sites(self) -> dict[str, Any]:
        rows = await self.rows(sql.sites(self._db))
        return {
            "sites": [
                {"site": s, "points": int(p), "points_with_data": int(d), "last_sample": last}
                for s, p, d, last in rows
            ]
        }

    async def check_points(self, site: str, points: list[str]) -> None:
        """404 for a site nobody knows, or for points the site never had."""
        known = {row[0] for row in await self.rows(sql.known_points(self._db, site))}
        if not known:
            raise QueryError(f"unknown site {site!r}: GET /api/v1/sites lists the known sites", status=404)
        unknown = [p for p in points if p not in known]
        if unknown:
            shown = ", ".join(repr(p) for p in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise QueryError(
                f"unknown point(s) of site {site!r}: {shown}; GET /api/v1/sites/{site}/points lists them",
                status=404,
            )

    async def points(self, site: str, marker_tags: list[str], kv_tags: dict[str, str]) -> dict[str, Any]:
        await self.check_points(site, [])
        rows = await self.rows(sql.points(self._db, site, marker_tags, kv_tags))
        items = [
            {
                "point_name": p,
                "collect_enabled": bool(enabled),
                "collect_interval": interval,
                "point_type": ptype,
                "unit": unit,
                "marker_tags": list(markers),
                "kv_tags": dict(kv),
                "metadata": _json_object(meta),
            }
            for p, enabled, interval, ptype, unit, markers, kv, meta in rows
        ]
        return {"site": site, "count": len(items), "points": items}

    async def estimates(self, site: str, points: list[str], time_range: TimeRange) -> dict[str, int]:
        """Upper bounds of the rows each resolution would return."""
        raw = int(await self.scalar(sql.raw_count(self._db, site, points, time_range)) or 0)
        budget = self.settings.api_row_budget
        if budget < raw <= 2 * budget:
            # Unmerged replays may be all that push it over: count exactly, at bounded cost.
            raw = int(await self.scalar(sql.raw_count(self._db, site, points, time_range, exact=True)) or 0)
        out = {"raw": raw}
        for resolution in ("5m", "1h"):
            stored = await self.scalar(sql.rollup_count(self._db, resolution, site, points, time_range))
            out[resolution] = min(
                int(stored or 0), len(points) * bucket_count(time_range, BUCKET_MS[resolution])
            )
        return out

    async def samples(
        self, site: str, points: list[str], time_range: TimeRange, resolution: str
    ) -> dict[str, Any]:
        """Rows ``{"point_name", "timestamp", "value"}`` (rollups add min, max, count), by point then time."""
        await self.check_points(site, points)
        budget = self.settings.api_row_budget
        chosen = choose_resolution(resolution, await self.estimates(site, points, time_range), budget)
        if chosen == "raw":
            query = sql.raw_samples(self._db, site, points, time_range, budget)
            columns = ["point_name", "timestamp", "value"]
        else:
            query = sql.rollup_samples(self._db, chosen, site, points, time_range, budget)
            columns = ["point_name", "timestamp", "value", "min", "max", "count"]
        rows = await self.rows(query)
        return {
            "site": site,
            "points": points,
            "start": time_range.start_ms,
            "end": time_range.end_ms,
            "requested_resolution": resolution,
            "resolution": chosen,
            "columns": columns,
            "row_count": len(rows),
            "rows": [dict(zip(columns, row, strict=True)) for row in rows],
        }

    async def latest(self, site: str, points: list[str]) -> dict[str, Any]:
        await self.check_points(site, points)
        rows = await self.rows(sql.latest(self._db, site, points))
        items = [{"point_name": p, "timestamp": ts, "value": v} for p, ts, v in rows]
        return {"site": site, "row_count": len(items), "rows": items}

    async def gaps(self, site: str, time_range: TimeRange, tolerance: float) -> dict[str, Any]:
        """Gaps of the site's points from ``start`` up to its watermark (not beyond: later samples
        were not fetched yet), with a summary: points complete, with gaps, silent, the worst."""
        longest = self.settings.api_gaps_max_span_s
        if time_range.span_ms > longest * 1000:
            raise QueryError(
                f"the range spans {time_range.span_ms // 1000} s, gaps takes at most {longest} s per request "
                "(setting STREAMER_API_GAPS_MAX_SPAN_S): split it"
            )
        await self.check_points(site, [])
        start = time_range.start_ms
        until, until_source = await self._fetched_until(site, time_range)
        judged, not_judged = (int(v) for v in (await self.rows(sql.gap_points(self._db, site)))[0])
        rows = []
        if until > start:
            rows = await self.rows(sql.gaps(self._db, site, TimeRange(start, until), tolerance))
        shaped = [(p, int(iv), [(int(a), int(b)) for a, b in spans]) for p, iv, spans in rows]
        points = sql.gap_rows(shaped, start, until)
        return {
            "site": site,
            "start": start,
            "end": time_range.end_ms,
            "until": max(start, until),
            "until_source": until_source,
            "tolerance": tolerance,
            "summary": sql.gap_summary(points, judged if until > start else 0, not_judged),
            "points": points,
        }

    async def _fetched_until(self, site: str, time_range: TimeRange) -> tuple[int, str]:
        """Where judging stops: the range end, or the site's watermark when earlier; a site without
        a recorded window stops at its newest stored sample."""
        end = time_range.end_ms
        windows, watermark = (await self.rows(sql.watermark(self._db, site)))[0]
        if int(windows):
            return (int(watermark), "watermark") if int(watermark) < end else (end, "end")
        newest = await self.scalar(sql.newest_sample(self._db, site))
        if newest is not None and int(newest) + 1 < end:
            return int(newest) + 1, "newest sample"
        return end, "end"

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]:
        """Per whole hour of the range: samples stored against the points' collect_interval."""
        if time_range.span_ms > cq.MAX_RANGE_MS:
            raise QueryError("a completeness range spans at most 31 days: narrow start and end")
        await self.check_points(site, [])
        start, end = cq.hour_span(time_range.start_ms, time_range.end_ms)
        expected = await self.rows(cq.expected_per_hour(self._db, site))
        per_hour, points = (int(expected[0][1]), int(expected[0][2])) if expected else (0, 0)
        rows = await self.rows(cq.stored_per_hour(self._db, site, start, end))
        first = await self.scalar(cq.read_from(self._db, site))
        return cq.shape_hours(site, start, end, per_hour, points, rows, None if first is None else int(first))

    async def run_sql(self, text: str) -> SqlAnswer:
        if not self.settings.api_sql_enabled:
            raise QueryError("SQL is switched off here (setting STREAMER_API_SQL_ENABLED=false)", status=403)
        return await self._readonly.run(text)

    # ---------------------------------------------------------------------------- health and status
    async def clickhouse_health(self) -> dict[str, Any]:
        return await self._status.clickhouse_health()

    async def health(self) -> dict[str, Any]:
        return await self._status.health()

    async def status(self) -> dict[str, Any]:
        """Per site: last sync, watermark age, last error, rows; Kafka lag and DLQ; ClickHouse state
        (``streamer.query.status``: reused for ``api_status_cache_s``)."""
        return await self._status.status()


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}
