"""A stand-in ClickHouse HTTP interface: records every request and runs it on the embedded engine.

    python chdb_http.py DATA_DIR PORT_FILE LOG_FILE

Serves on 127.0.0.1 (a free port, written to PORT_FILE once listening). Each request is logged to
LOG_FILE as one JSON line — the statement as sent (the body, or the ``query`` parameter; an insert's
data left out), the bound parameters (``param_*``), the settings (every other URL parameter but the
interface's own: ``database``, ``query``, ...) — and then run on chdb with those settings, its answer
returned the way the server answers (the requested format, ``X-ClickHouse-Format``, the exception code).
This is test scaffolding: no ClickHouse server can run on the development machines.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

import clickhouse_connect
import lz4.frame

# URL parameters of the HTTP interface itself, not settings (ClickHouse docs, "HTTP interface").
INTERFACE_PARAMS = frozenset(
    {
        "query",
        "database",
        "user",
        "password",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "quota_key",
        "role",
        "client_protocol_version",
    }
)
# Settings of the HTTP handler the embedded engine has no use for (and rejects).
_HTTP_ONLY = frozenset(
    {"enable_http_compression", "send_progress_in_http_headers", "http_headers_progress_interval_ms"}
)
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)")


class _Engine:
    def __init__(self, path: str, log_path: str) -> None:
        self.client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        self.backend = self.client._backend  # the engine handle: run SQL with settings and parameters
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the server
        self.lock = threading.Lock()
        # chdb keeps a query's settings for the rest of its session, where a server applies them to the
        # one request: each request's settings are put back to these values after it ran.
        defaults = self.backend._run_with_settings(
            "SELECT name, value FROM system.settings", "TabSeparated", {}, params={}, database=None
        )
        lines = bytes(defaults.bytes() or b"").decode().splitlines()
        self.defaults = dict(line.split("\t", 1) for line in lines if "\t" in line)

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def run(
        self, sql: str, fmt: str, settings: dict[str, str], params: dict[str, str], db: str | None
    ) -> bytes:
        # readonly is recorded but not applied here: kept by the chdb session, it would lock every later
        # request's settings (the embedded tests prove what readonly=1 refuses).
        engine_settings = {k: v for k, v in settings.items() if k not in _HTTP_ONLY and k != "readonly"}
        binds = {k.removeprefix("param_"): v for k, v in params.items()}
        with self.lock:
            try:
                result = self.backend._run_with_settings(sql, fmt, engine_settings, params=binds, database=db)
            finally:
                restore = {k: self.defaults[k] for k in engine_settings if k in self.defaults}
                if restore:
                    self.backend._run_with_settings(
                        "SELECT 1", "TabSeparated", restore, params={}, database=None
                    )
        return bytes(result.bytes() or b"")


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding == "lz4":
        return bytes(lz4.frame.decompress(body))
    raise ValueError(f"unsupported Content-Encoding {encoding}")


class Handler(BaseHTTPRequestHandler):
    engine: _Engine

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlparse(self.path)
        if url.path == "/ping":
            self._answer(200, b"Ok.\n", {})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = _decompress(self._body(), self.headers.get("Content-Encoding"))
        statement, data = self._statement(params, body)
        binds = {k: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in INTERFACE_PARAMS and not k.startswith("param_")
        }
        self.engine.record(
            {"statement": statement, "params": binds, "settings": settings, "data": bool(data)}
        )
        try:
            answer, fmt = self._execute(statement, data, settings, binds, params.get("database"))
        except Exception as exc:
            text = str(exc)
            code = _CODE.search(text)
            headers = {"X-ClickHouse-Exception-Code": code.group(1) if code else "1000"}
            self._answer(500, f"Code: {headers['X-ClickHouse-Exception-Code']}. {text}".encode(), headers)
            return
        headers = {"X-ClickHouse-Timezone": "UTC"}
        if fmt:
            headers["X-ClickHouse-Format"] = fmt
        self._answer(200, answer, headers)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    @staticmethod
    def _statement(params: dict[str, str], body: bytes) -> tuple[str, bytes]:
        if "query" in params:
            return params["query"], body
        if body.startswith(b"INSERT INTO") and b"FORMAT Native\n" in body:
            head, _, data = body.partition(b"\n")
            return head.decode(), data
        return body.decode(), b""

    def _execute(
        self, statement: str, data: bytes, settings: dict[str, str], binds: dict[str, str], db: str | None
    ) -> tuple[bytes, str | None]:
        match = _FORMAT.search(statement)
        if data and statement.upper().startswith("INSERT") and match:
            with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as tmp:
                tmp.write(data)
            try:
                infile = f"{statement[: match.start()]} FROM INFILE '{tmp.name}' FORMAT {match.group(1)}"
                self.engine.run(infile, "TabSeparated", settings, binds, db)
            finally:
                os.unlink(tmp.name)
            return b"", None
        if match:
            return self.engine.run(statement, match.group(1), settings, binds, db), match.group(1)
        # A command: the server names a result set's format, and sends nothing for a control statement.
        answer = self.engine.run(statement, "TabSeparatedWithNames", settings, binds, db)
        if not answer:
            return b"", None
        return answer.partition(b"\n")[2], "TabSeparated"

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    data_dir, port_file, log_file = sys.argv[1:4]
    Handler.engine = _Engine(data_dir, log_file)
    server = HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
