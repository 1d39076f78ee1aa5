"""Everything streamer asks ClickHouse, run once against one target: requests recorded, answers printed.

    python workload.py CLICKHOUSE_URL DATA_DIR LOG_FILE

Migrations, the schema check, the sink's inserts (the query tests' data set), and every question of the
query service (sites, points by tag, samples raw/5m/1h/auto, latest, gaps, sync status, rows, caller
SQL). With ``chdb://`` the embedded engine's handle records each call the client hands it (statement,
bound parameters, settings; session settings as ``set``) into LOG_FILE in the shape chdb_http.py logs
the HTTP requests of an ``http://`` run, so the two logs compare line for line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import orjson
from clickhouse_connect.driver._backend import chdb_backend
from clickhouse_connect.driver.binding import quote_identifier

from streamer.query import status as status_module
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.query.sql_engines import ChdbEngine
from streamer.settings import load_settings
from streamer.sink.writer import Sink
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, fill

NOW_MS = T0 + SPAN_MIN * MINUTE + 600_000


def _insert_statement(ctx: Any) -> str:
    """The statement an HTTP insert sends ahead of its data (the engine gets the data from a file)."""
    columns = ", ".join(quote_identifier(c) for c in ctx.column_names)
    return f"INSERT INTO {ctx.table} ({columns}) FORMAT Native"


def _record_chdb(log: Any) -> None:
    """Wrap the engine handle's entry points so each call is logged before it runs."""
    backend = chdb_backend.ChdbBackend

    def write(statement: Any, params: Any, settings: Any, data: bool) -> None:
        text = statement.decode() if isinstance(statement, bytes) else statement
        entry = {"statement": text, "params": dict(params or {}), "settings": dict(settings), "data": data}
        log.write(json.dumps(entry, default=str) + "\n")

    def wrap(name: str, describe: Any) -> None:
        original = getattr(backend, name)

        def recorded(self: Any, *args: Any) -> Any:
            describe(*args)
            return original(self, *args)

        setattr(backend, name, recorded)

    wrap("execute_query", lambda ctx, runtime, sql: write(sql, ctx.bind_params, runtime.settings, False))
    wrap(
        "execute_command",
        lambda cmd, binds, data, ext, runtime, ts: write(cmd, binds, runtime.settings, data is not None),
    )
    wrap(
        "execute_data_insert",
        lambda ctx, runtime, body, retry: write(_insert_statement(ctx), {}, runtime.settings, True),
    )
    wrap(
        "execute_raw_insert",
        lambda table, names, block, fmt, compression, runtime, ts: write(
            f"INSERT INTO {table} ({', '.join(quote_identifier(c) for c in names)}) FORMAT {fmt}",
            {},
            runtime.settings,
            True,
        ),
    )
    wrap("execute_raw_query", lambda sql, binds, ext, runtime, ts: write(sql, binds, runtime.settings, False))
    wrap("set_client_setting", lambda key, value: log.write(json.dumps({"set": [key, str(value)]}) + "\n"))
    # Caller SQL runs on a chdb connection of its own (query/sql_engines.py): its statements count too,
    # named as the HTTP path names its bound values.
    engine = ChdbEngine
    text, stream = engine.text, engine.stream

    def recorded_text(self: Any, sql: str, params: dict[str, str]) -> bytes:
        write(sql, {f"param_{k}": v for k, v in params.items()}, {}, False)
        return text(self, sql, params)

    def recorded_stream(self: Any, sql: str) -> Any:
        write(sql, {}, {}, False)
        return stream(self, sql)

    init = engine.__init__

    def recorded_init(self: Any, path: str, database: str, session: dict[str, Any]) -> None:
        for key, value in session.items():
            log.write(json.dumps({"set": [key, str(value)]}) + "\n")
        init(self, path, database, session)

    engine.text, engine.stream = recorded_text, recorded_stream  # type: ignore[method-assign]
    engine.__init__ = recorded_init  # type: ignore[method-assign]


async def _ask(service: QueryService) -> dict[str, Any]:
    whole = TimeRange(T0, T0 + SPAN_MIN * MINUTE)
    points = ["temp", "fan"]
    answers: dict[str, Any] = {
        "sites": await service.sites(),
        "points": await service.points("s1", ["ahu"], {"unit": "degF"}),
    }
    for resolution in ("raw", "5m", "1h", "auto"):
        answers[f"samples {resolution}"] = await service.samples("s1", points, whole, resolution)
    answers["latest"] = await service.latest("s1", points)
    answers["gaps"] = await service.gaps("s1", whole, 1.5)
    answers["status"] = await service.status()
    sql = await service.run_sql("SELECT site, count() FROM timeseries_raw FINAL GROUP BY site ORDER BY site")
    # Where the answer came from and how long it took differ by target, not by content.
    answers["sql"] = {"columns": sql.columns, "rows": [orjson.loads(row) for row in sql.rows]}
    answers["status"]["clickhouse"].pop("target")
    return answers


class _NoKafka:
    """The status call's Kafka half: not what this workload compares."""

    async def snapshot(self) -> dict[str, Any]:
        return {
            "reachable": False,
            "error": "not asked",
            "total_lag": None,
            "dlq_depth": None,
            "partitions": [],
        }


def main() -> None:
    url, data_dir, log_path = sys.argv[1:4]
    with open(log_path, "a", encoding="utf-8") as log:
        if url.startswith("chdb://"):
            _record_chdb(log)
        settings = load_settings(
            data_dir=Path(data_dir),
            clickhouse_url=url,
            clickhouse_password="reader-and-writer",
            kafka_bootstrap_servers="127.0.0.1:1",
        )
        status_module.now_ms = lambda: NOW_MS  # status's "last hour" must not depend on the clock
        fill(settings)  # migrate, then points, samples (one batch replayed) and sync runs
        with Sink(settings) as sink:
            sink.check_schema()
        service = QueryService(settings, kafka=_NoKafka())  # type: ignore[arg-type]

        async def run() -> dict[str, Any]:
            try:
                return await _ask(service)
            finally:
                await service.close()

        print(json.dumps(asyncio.run(run()), default=str, sort_keys=True))


if __name__ == "__main__":
    main()
