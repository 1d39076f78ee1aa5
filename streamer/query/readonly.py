"""Caller SQL on a client of its own whose session is read-only.

Why not the sink's shared client with per-call settings: on the embedded engine, clickhouse-connect
applies per-call settings of some statements with ``SET`` and restores them afterwards; once
``readonly=1`` is set the restore is refused, and the writer's session would stay read-only. So the
SQL endpoint gets a separate client (on chdb a separate engine handle on the same directory, which
the engine allows within one process) whose session carries the limits, ``readonly=1`` last because
it forbids changing any setting after it. On a server the settings ride on every request instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from streamer.errors import QueryError, SinkTransientError, StreamerError
from streamer.settings import Settings
from streamer.sink.client import acquire_client, release_client
from streamer.sink.errors import describe, error_code

# Server states rather than the caller's SQL: answer 503, not 400.
_SERVER_CODES = frozenset({81, 202, 209, 210, 225, 279, 516})


def session_settings(settings: Settings) -> dict[str, Any]:
    """The limits of caller SQL; ``readonly`` must stay last (it locks every setting after it)."""
    return {
        "max_result_rows": settings.api_sql_max_rows,
        "result_overflow_mode": "throw",
        "max_execution_time": settings.api_sql_max_execution_s,
        "max_memory_usage": settings.api_sql_max_memory_bytes,
        "readonly": 1,
    }


class ReadOnlySql:
    """Runs one read statement; ClickHouse's refusals come back as ``QueryError`` (HTTP 400)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    def _connect(self) -> Client:
        if self._client is not None:
            return self._client
        s = self._settings
        url = s.resolved_clickhouse_url
        if url.startswith("chdb://"):
            # The database must exist before a read-only session can USE it: the sink's factory
            # creates it, then a separate handle is opened with the limits as session settings.
            release_client(acquire_client(s))
            client = clickhouse_connect.get_client(
                dsn=f"chdb://{urlparse(url).path}",
                database=s.clickhouse_database,
                settings=session_settings(s),
            )
        else:
            client = acquire_client(s)
            for key, value in session_settings(s).items():
                client.set_client_setting(key, value)
        self._client = client
        return client

    def _run_sync(self, statement: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = self._connect().query(statement)
        except StreamerError:
            raise
        except (DatabaseError, OperationalError) as exc:
            raise _translate(exc) from exc
        except Exception as exc:
            # e.g. several statements: chdb answers with a stream the client cannot decode.
            raise QueryError(
                f"ClickHouse could not run this SQL ({type(exc).__name__}): send one statement"
            ) from exc
        columns = [
            {"name": n, "type": t.name} for n, t in zip(result.column_names, result.column_types, strict=True)
        ]
        return {
            "columns": columns,
            "rows": [list(row) for row in result.result_rows],
            "row_count": result.row_count,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    async def run(self, statement: str) -> dict[str, Any]:
        # One statement at a time: the chdb handle is a single session anyway.
        async with self._lock:
            return await asyncio.to_thread(self._run_sync, statement)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._settings.is_embedded_clickhouse:
            await asyncio.to_thread(client.close)
        else:
            await asyncio.to_thread(release_client, client)


def _translate(exc: Exception) -> StreamerError:
    code = error_code(exc)
    text = describe(exc)
    if isinstance(exc, OperationalError) or code in _SERVER_CODES:
        return SinkTransientError(f"ClickHouse unavailable: {text}")
    hints = {
        164: "only read statements run here",
        396: "add a LIMIT or aggregate (result row limit, setting STREAMER_API_SQL_MAX_ROWS)",
        159: "the query ran too long (setting STREAMER_API_SQL_MAX_EXECUTION_S): narrow it",
        241: "the query needs too much memory (setting STREAMER_API_SQL_MAX_MEMORY_BYTES): narrow it",
        62: "fix the SQL syntax",
    }
    hint = hints.get(code or -1, "fix the SQL")
    return QueryError(f"ClickHouse refused the SQL ({hint}): {text}")
