"""Caller SQL: checked by the engine's own parser, run on a read-only session of its own, answered
as JSON that ClickHouse wrote, capped in bytes.

Why a session of its own: ``readonly=1`` locks every setting after it, and the writer's session
must stay writable; so /sql has its own handle (embedded: a separate chdb connection on the same
directory, which the engine allows within one process and runs concurrently; server: the limits
ride on every request). The session carries the limits (``session_settings``).

One request: (1) ``formatQuerySingleLine`` of the text, passed as a bound value, gives the canonical
statement (one statement or a syntax error, comments gone); (2) ``EXPLAIN AST`` of it, which parses
and never runs it, is checked by ``streamer.query.sqlguard``; (3) the canonical statement runs with
our FORMAT appended (a second FORMAT is a syntax error, so a caller's cannot slip through) and the
answer is read as it streams, stopping at ``api_sql_max_result_bytes``: Python never holds more.
ClickHouse formats the values (``JSONCompactEachRowWithNamesAndTypes``), so types JSON cannot carry
(wide integers, Decimal, NaN) arrive as strings and the rows are never decoded here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlparse

import orjson

from streamer.errors import QueryError, SinkTransientError, StreamerError
from streamer.query import sqlguard
from streamer.query.sql_engines import ChdbEngine, Engine, HttpEngine
from streamer.settings import Settings
from streamer.sink.client import acquire_client, release_client
from streamer.sink.errors import describe, error_code

ANSWER_FORMAT: Final = "JSONCompactEachRowWithNamesAndTypes"
CHECK_FORMAT: Final = "JSONCompactEachRow"
MAX_SQL_CHARS: Final = 100_000
# Server states rather than the caller's SQL: answer 503, not 400.
_SERVER_CODES = frozenset({81, 202, 209, 210, 225, 279, 516})


def session_settings(settings: Settings) -> dict[str, Any]:
    """The limits and output rules of caller SQL; ``readonly`` must stay last (it locks the rest)."""
    return {
        "max_result_rows": settings.api_sql_max_rows,
        "max_result_bytes": settings.api_sql_max_result_bytes,
        "result_overflow_mode": "throw",
        "max_execution_time": settings.api_sql_max_execution_s,
        "timeout_overflow_mode": "throw",
        "max_threads": settings.api_sql_max_threads,
        "max_memory_usage": settings.api_sql_max_memory_bytes,
        # Small blocks: an answer is read block by block, so it stops within about a block of the cap.
        "max_block_size": 8192,
        # JSON numbers are doubles to most readers: wide integers and decimals travel as strings,
        # NaN and infinities as "nan"/"inf", invalid UTF-8 is replaced (the body stays valid JSON).
        "output_format_json_quote_64bit_integers": 1,
        "output_format_json_quote_decimals": 1,
        "output_format_json_quote_denormals": 1,
        "output_format_json_validate_utf8": 1,
        "readonly": 1,
    }


@dataclass(frozen=True)
class SqlAnswer:
    """The answer of one statement: its columns and its rows as ClickHouse's JSON, one per row."""

    columns: list[dict[str, str]]
    rows: list[bytes]
    elapsed_ms: float

    def json_body(self) -> bytes:
        parts = [b'{"columns":', orjson.dumps(self.columns), b',"rows":[', b",".join(self.rows)]
        parts.append(f'],"row_count":{len(self.rows)},"elapsed_ms":{self.elapsed_ms}}}'.encode())
        return b"".join(parts)

    def csv_body(self) -> bytes:
        """Header and rows as CSV; arrays, maps and tuples as their JSON text."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c["name"] for c in self.columns])
        for row in self.rows:
            writer.writerow(
                [orjson.dumps(v).decode() if isinstance(v, list | dict) else v for v in orjson.loads(row)]
            )
        return buffer.getvalue().encode()

    def values(self) -> list[list[Any]]:
        """The rows decoded (for CSV and tests; the JSON answer never decodes them)."""
        return [orjson.loads(row) for row in self.rows]


Offload = Callable[..., Awaitable[Any]]


class ReadOnlySql:
    """Runs one read statement; refusals and ClickHouse's errors come back as ``QueryError`` (4xx)."""

    def __init__(self, settings: Settings, offload: Offload | None = None) -> None:
        self._settings = settings
        self._offload = offload
        self._engine: Engine | None = None
        self._table_functions: frozenset[str] | None = None
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    def _connect(self) -> Engine:
        if self._engine is None:
            s = self._settings
            if s.is_embedded_clickhouse:
                # The database must exist before a read-only session can USE it: the sink's
                # factory creates it.
                shared = acquire_client(s)
                try:
                    path = urlparse(s.resolved_clickhouse_url).path
                    self._engine = ChdbEngine(path, s.clickhouse_database, session_settings(s))
                except Exception as exc:
                    raise SinkTransientError(f"cannot open a read session on chdb://{path}: {exc}") from exc
                finally:
                    release_client(shared)
            else:
                self._engine = HttpEngine(acquire_client(s), session_settings(s))
        return self._engine

    def check(self, text: str) -> tuple[str, str]:
        """The canonical statement to run and its kind, or ``QueryError`` naming what is refused."""
        if len(text) > MAX_SQL_CHARS:
            raise QueryError(f"SQL text is {len(text)} characters, at most {MAX_SQL_CHARS}")
        if not text.strip(" \t\r\n;"):
            raise QueryError("SQL is empty: send one read statement, e.g. SELECT count() FROM timeseries_raw")
        engine = self._connect()
        query = "SELECT formatQuerySingleLine({q:String}) FORMAT RawBLOB"
        canonical = self._engine_call(lambda: engine.text(query, {"q": text})).decode()
        try:
            dump = self._engine_call(
                lambda: engine.text(f"EXPLAIN AST {canonical} FORMAT {CHECK_FORMAT}", {})
            )
        except QueryError as exc:
            if "SYNTAX_ERROR" not in str(exc):
                raise
            # It parsed alone but takes no FORMAT: a statement without a result set (SYSTEM, USE, ...).
            raise QueryError(sqlguard.not_a_read(canonical.split(None, 1)[0].upper())) from exc
        lines = [str(orjson.loads(line)[0]) for line in dump.splitlines() if line]
        kind = sqlguard.check_dump(lines, CHECK_FORMAT, self._known_table_functions(engine))
        return canonical, kind

    def _known_table_functions(self, engine: Engine) -> frozenset[str]:
        if self._table_functions is None:
            query = f"SELECT name FROM system.table_functions FORMAT {CHECK_FORMAT}"
            body = self._engine_call(lambda: engine.text(query, {}))
            self._table_functions = frozenset(orjson.loads(line)[0] for line in body.splitlines() if line)
        return self._table_functions

    def run_sync(self, text: str) -> SqlAnswer:
        with self._thread_lock:
            started = time.perf_counter()
            canonical, kind = self.check(text)
            engine = self._connect()
            sql = f"{canonical} FORMAT {ANSWER_FORMAT}"
            try:
                if kind == "SelectWithUnionQuery":
                    encodings = self._engine_call(lambda: self._read_capped(engine, sql))
                else:  # SHOW, DESCRIBE, EXPLAIN: small answers the engine does not stream
                    encodings = [self._engine_call(lambda: engine.text(sql, {}))]
            except BaseException:
                # A stream stopped part-way may leave output behind on its connection: start afresh.
                self._engine = None
                engine.close()
                raise
            try:
                return _answer(encodings, round((time.perf_counter() - started) * 1000, 1))
            except ValueError as exc:  # orjson's decode errors are ValueErrors too
                raise SinkTransientError(
                    f"ClickHouse answered in a shape this API cannot read ({type(exc).__name__}: {exc}); "
                    "try again"
                ) from exc

    def _read_capped(self, engine: Engine, sql: str) -> list[bytes]:
        cap = self._settings.api_sql_max_result_bytes
        encodings: list[list[bytes]] = []
        size = 0
        for piece, new in engine.stream(sql):
            size += len(piece)
            if size > cap:
                raise QueryError(
                    f"max_result_bytes exceeded ({cap}): the JSON answer is larger; add a LIMIT or "
                    "aggregate (setting STREAMER_API_SQL_MAX_RESULT_BYTES)",
                    status=413,
                )
            if new or not encodings:
                encodings.append([])
            encodings[-1].append(piece)
        return [b"".join(parts) for parts in encodings]

    def _engine_call(self, call: Any) -> Any:
        try:
            return call()
        except StreamerError:
            raise
        except Exception as exc:
            raise _translate(exc, self._settings) from exc

    async def run(self, text: str) -> SqlAnswer:
        async with self._lock:
            if self._offload is not None:
                answer: SqlAnswer = await self._offload(self.run_sync, text)
                return answer
            return await asyncio.to_thread(self.run_sync, text)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        # Under the thread lock: one chdb handle serves one call at a time (a second thread on a
        # handle that is streaming breaks both), and closing is a call too.
        with self._thread_lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                engine.close()


def _answer(encodings: list[bytes], elapsed_ms: float) -> SqlAnswer:
    """Columns from the first encoding's two header lines; every encoding repeats them, then rows."""
    names: list[str] = []
    types: list[str] = []
    rows: list[bytes] = []
    for i, encoding in enumerate(encodings):
        lines = encoding.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if len(lines) < 2:
            raise QueryError("ClickHouse answered without a header: send one read statement")
        if i == 0:
            names, types = orjson.loads(lines[0]), orjson.loads(lines[1])
        rows.extend(lines[2:])
    columns = [{"name": n, "type": t} for n, t in zip(names, types, strict=True)]
    return SqlAnswer(columns, rows, elapsed_ms)


def _translate(exc: Exception, settings: Settings) -> StreamerError:
    code = error_code(exc)
    text = describe(exc)
    if code in _SERVER_CODES or (code is None and "Connection" in type(exc).__name__):
        return SinkTransientError(f"ClickHouse unavailable: {text}")
    if code is None:
        # Every refusal of the caller's SQL carries ClickHouse's error code; a failure without one
        # is the client library's or the engine handle's (an IndexError decoding a block, a stream
        # cut short): not the caller's to fix, so a 503 that says so rather than a 400 or a 500.
        return SinkTransientError(f"ClickHouse's client failed unexpectedly ({text[:300]}); try again")
    limits: dict[int, tuple[str, object, str, int]] = {
        396: ("max_result_rows", settings.api_sql_max_rows, "STREAMER_API_SQL_MAX_ROWS", 413),
        159: (
            "max_execution_time",
            settings.api_sql_max_execution_s,
            "STREAMER_API_SQL_MAX_EXECUTION_S",
            422,
        ),
        241: (
            "max_memory_usage",
            settings.api_sql_max_memory_bytes,
            "STREAMER_API_SQL_MAX_MEMORY_BYTES",
            422,
        ),
    }
    if code == 396 and "max bytes" in text:
        limits[396] = (
            "max_result_bytes",
            settings.api_sql_max_result_bytes,
            "STREAMER_API_SQL_MAX_RESULT_BYTES",
            413,
        )
    if code in limits:
        name, value, setting, status = limits[code]
        return QueryError(
            f"{name} exceeded ({value}): narrow the query, add a LIMIT or aggregate "
            f"(setting {setting}): {text}",
            status=status,
        )
    if code == 164 and "Cannot modify" in text:
        return QueryError(
            f"SETTINGS clauses are refused: the endpoint's limits are fixed by the server: {text}"
        )
    if code == 62 and f"(FORMAT): FORMAT {ANSWER_FORMAT}" in text:
        return QueryError("drop the FORMAT clause: the API answers JSON, or CSV with ?format=csv")
    if code == 62 and "Multi-statements" in text:
        return QueryError(f"send one statement per request: {text}")
    hints = {
        164: "only read statements run here",
        62: "fix the SQL syntax",
        36: "only read statements run here",
    }
    return QueryError(f"ClickHouse refused the SQL ({hints.get(code or -1, 'fix the SQL')}): {text}")
