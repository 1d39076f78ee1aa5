"""Classification of ClickHouse failures into transient and permanent, over real exception texts."""

from __future__ import annotations

import struct

import pytest
from clickhouse_connect.driver._backend.httpcommon import build_http_error
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError, ProgrammingError

from streamer.errors import SinkPermanentError, SinkTransientError
from streamer.sink.errors import classify, describe, error_code, translate

URL = "http://clickhouse:8123"


def _server(code: int, text: str) -> DatabaseError:
    """The exception clickhouse-connect raises for a ClickHouse server error over HTTP."""
    return build_http_error(500, str(code), f"Code: {code}. DB::Exception: {text}", True, URL, False)


TRANSIENT = [
    _server(60, "Table streamer.timeseries_raw does not exist. (UNKNOWN_TABLE) (version 25.8.1.1)"),
    _server(81, "Database streamer does not exist. (UNKNOWN_DATABASE)"),
    _server(159, "Timeout exceeded: elapsed 30.001 seconds, maximum: 30. (TIMEOUT_EXCEEDED)"),
    _server(209, "Timeout exceeded while reading from socket (10.0.0.2:9000, 300000 ms). (SOCKET_TIMEOUT)"),
    _server(
        241,
        "Memory limit (total) exceeded: would use 9.31 GiB (attempt to allocate chunk of 4194304 bytes), "
        "maximum: 9.31 GiB. (MEMORY_LIMIT_EXCEEDED)",
    ),
    _server(
        252,
        "Too many parts (3001 with average size of 1.02 MiB) in table 'streamer.timeseries_raw'. "
        "Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
    ),
    _server(242, "Table is in readonly mode (replica path: /clickhouse/tables/01/raw). (TABLE_IS_READ_ONLY)"),
    _server(516, "default: Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)"),
    _server(1000, "Poco::Exception. Code: 1000, e.code() = 0, Timeout. (POCO_EXCEPTION)"),
    build_http_error(502, None, "<html><body>502 Bad Gateway</body></html>", True, URL, False),
    build_http_error(503, None, "Service Unavailable", True, URL, True),
    OperationalError(
        "Error HTTPConnectionPool(host='127.0.0.1', port=8123): Max retries exceeded with url: / "
        "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection "
        "refused')) executing HTTP request attempt 1 (http://127.0.0.1:8123)"
    ),
    # chdb's own error when the engine fails underneath clickhouse-connect: the code is in the text.
    RuntimeError("Code: 241. DB::Exception: Memory limit (for query) exceeded. (MEMORY_LIMIT_EXCEEDED)"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError("timed out"),
    OSError(28, "No space left on device"),
]

PERMANENT = [
    _server(53, "Type mismatch in IN or VALUES section. Expected: Float64. Got: String. (TYPE_MISMATCH)"),
    _server(6, "Cannot parse string 'abc' as Float64: syntax error at begin of string. (CANNOT_PARSE_TEXT)"),
    _server(
        27,
        "Cannot parse input: expected ',' before: 'x'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
    ),
    _server(16, "No such column valu in table streamer.timeseries_raw. (NO_SUCH_COLUMN_IN_TABLE)"),
    _server(41, "Cannot read DateTime: unexpected word. (CANNOT_PARSE_DATETIME)"),
    _server(
        469, "Constraint `positive` for table streamer.timeseries_raw is violated. (VIOLATED_CONSTRAINT)"
    ),
    _server(
        252,
        "Too many partitions for single INSERT block (more than 100). The limit is controlled by "
        "'max_partitions_per_insert_block' setting. (TOO_MANY_PARTS)",
    ),
    build_http_error(413, None, "Request Entity Too Large", True, URL, False),
    ProgrammingError("Unrecognized column 'valu' in table timeseries_raw"),
    DataError("Invalid None value in non-Nullable column, column name: `site`"),
    DataError("Unable to create native array for column `ts`: error"),
    ValueError("could not convert string to float: 'abc'"),
    TypeError("float() argument must be a string or a real number, not 'NoneType'"),
    struct.error("argument out of range"),
    AttributeError("'float' object has no attribute 'timestamp'"),  # a float where epoch-ms ints go
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: describe(e)[:60])
def test_outage_and_overload_errors_are_transient(exc: BaseException) -> None:
    """Server state problems (down, slow, overloaded, table detached) must pause, never reach the DLQ."""
    assert classify(exc) == "transient"
    assert isinstance(translate(exc, "insert"), SinkTransientError)


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: describe(e)[:60])
def test_bad_rows_and_schema_mismatch_are_permanent(exc: BaseException) -> None:
    """Errors caused by the rows themselves are permanent, so the batch is bisected to its poison rows."""
    assert classify(exc) == "permanent"
    assert isinstance(translate(exc, "insert"), SinkPermanentError)


def test_error_code_comes_from_attribute_or_text() -> None:
    """The code is read from the exception's ``code`` and, failing that, from ``Code: N`` in its text."""
    assert error_code(DatabaseError("no code in text", code=252)) == 252
    assert error_code(RuntimeError("Code: 60. DB::Exception: Table x does not exist")) == 60
    assert error_code(ValueError("nothing")) is None


def test_translation_names_action_and_error_without_secrets() -> None:
    """The message names the action and the ClickHouse error, hides secrets, and is bounded in length."""
    exc = _server(241, "Memory limit exceeded for user hunter2pw " + "x" * 2000 + " (MEMORY_LIMIT_EXCEEDED)")
    err = translate(exc, "insert of 5 rows into timeseries_raw", secrets=("hunter2pw",))
    text = str(err)
    prefix = "ClickHouse insert of 5 rows into timeseries_raw failed: MEMORY_LIMIT_EXCEEDED (241): "
    assert text.startswith(prefix)
    assert "hunter2pw" not in text
    assert "**********" in text
    assert len(text) < 600
