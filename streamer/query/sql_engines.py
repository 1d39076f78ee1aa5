"""The two places caller SQL runs, behind one small interface: an embedded engine handle of its own
(chdb's public API), or a ClickHouse server through clickhouse-connect.

Each is opened with the read-only session's settings (``streamer.query.readonly.session_settings``)
and never shared with the sink: the embedded one is a separate connection on the same directory, the
server one carries the limits on every request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from streamer.sink.client import release_client


class Engine(Protocol):
    """Where caller SQL runs: ``text`` for a short answer, ``stream`` for one read piece by piece."""

    def text(self, sql: str, params: dict[str, str]) -> bytes: ...

    def stream(self, sql: str) -> Iterator[tuple[bytes, bool]]:
        """Pieces of the answer; the flag marks a piece that begins a new self-contained encoding."""
        ...

    def close(self) -> None: ...


class ChdbEngine:
    """A chdb connection of its own (chdb's public API): streams an answer block by block."""

    def __init__(self, path: str, database: str, session: dict[str, Any]) -> None:
        import chdb

        self._conn: Any = chdb.connect(os.path.realpath(path))  # type: ignore[no-untyped-call]
        self._conn.query(f"USE `{database}`", "TabSeparated")
        for key, value in session.items():
            literal = value if isinstance(value, int | float) else "'" + str(value) + "'"
            self._conn.query(f"SET {key} = {literal}", "TabSeparated")

    def text(self, sql: str, params: dict[str, str]) -> bytes:
        escaped = {k: escape_param(v) for k, v in params.items()}
        return bytes(self._conn.query(sql, trailing_format(sql), params=escaped).bytes())

    def stream(self, sql: str) -> Iterator[tuple[bytes, bool]]:
        result = self._conn.send_query(sql, trailing_format(sql))
        try:
            for chunk in result:
                yield bytes(chunk.bytes()), True
        finally:
            result.cancel()
            result.close()

    def close(self) -> None:
        self._conn.close()


class HttpEngine:
    """A ClickHouse server through clickhouse-connect; the limits ride on every request."""

    def __init__(self, client: Client, session: dict[str, Any]) -> None:
        self._client = client
        for key, value in session.items():
            self._client.set_client_setting(key, value)

    def text(self, sql: str, params: dict[str, str]) -> bytes:
        return bytes(self._client.raw_query(sql, parameters=params))

    def stream(self, sql: str) -> Iterator[tuple[bytes, bool]]:
        stream: Any = self._client.raw_stream(sql)
        try:
            first = True
            for piece in iter(lambda: stream.read(1 << 20), b""):
                yield piece, first
                first = False
        finally:
            stream.close()

    def close(self) -> None:
        release_client(self._client)


def trailing_format(sql: str) -> str:
    """The format a statement ends with (ours: every statement run here ends with one)."""
    return str(sql.rsplit(" FORMAT ", 1)[1])


def escape_param(value: str) -> str:
    """A bound value as the engine reads it (escaped text: backslash, newline, tab, CR, NUL)."""
    for raw, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"), ("\0", "\\0")):
        value = value.replace(raw, escaped)
    return value
