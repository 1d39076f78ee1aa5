"""Which ClickHouse failures are worth retrying: a pure classification, and the translation into
``SinkTransientError`` / ``SinkPermanentError``.

The rule: *permanent* only when the rows themselves (or their shape) are at fault, so that bisecting
the batch isolates poison rows for the DLQ. Everything about the server's state (unreachable,
timeouts, 5xx, too many parts, memory, a table detached or a database missing during an outage,
access) is *transient*: the stream pauses and nothing reaches the DLQ. An unknown server error code
is transient too: a stalled stream is visible and recoverable, data in the DLQ because of an outage
is not what anyone wants.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import Literal

from clickhouse_connect.driver.exceptions import DataError, OperationalError, ProgrammingError

from streamer.errors import SinkPermanentError, SinkTransientError

Kind = Literal["transient", "permanent"]

# Codes of errors caused by the inserted data or its shape (ClickHouse src/Common/ErrorCodes.cpp).
PERMANENT_CODES: dict[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    7: "INCORRECT_NUMBER_OF_COLUMNS",
    8: "THERE_IS_NO_COLUMN",
    9: "SIZES_OF_COLUMNS_DOESNT_MATCH",
    10: "NOT_FOUND_COLUMN_IN_BLOCK",
    16: "NO_SUCH_COLUMN_IN_TABLE",
    20: "NUMBER_OF_COLUMNS_DOESNT_MATCH",
    25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    32: "ATTEMPT_TO_READ_AFTER_EOF",
    33: "CANNOT_READ_ALL_DATA",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    43: "ILLEGAL_TYPE_OF_ARGUMENT",
    44: "ILLEGAL_COLUMN",
    47: "UNKNOWN_IDENTIFIER",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    131: "TOO_LARGE_STRING_SIZE",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    407: "DECIMAL_OVERFLOW",
    469: "VIOLATED_CONSTRAINT",
}

# Named for the reader: these, and any code not listed above, are transient.
TRANSIENT_CODES: dict[int, str] = {
    60: "UNKNOWN_TABLE",  # e.g. the table is detached for maintenance
    81: "UNKNOWN_DATABASE",
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    173: "CANNOT_ALLOCATE_MEMORY",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    218: "TABLE_IS_DROPPED",
    225: "NO_ZOOKEEPER",
    241: "MEMORY_LIMIT_EXCEEDED",
    242: "TABLE_IS_READ_ONLY",
    243: "NOT_ENOUGH_SPACE",
    252: "TOO_MANY_PARTS",
    279: "ALL_CONNECTION_TRIES_FAILED",
    319: "UNKNOWN_STATUS_OF_INSERT",
    394: "QUERY_WAS_CANCELLED",
    497: "ACCESS_DENIED",
    516: "AUTHENTICATION_FAILED",
    999: "KEEPER_EXCEPTION",
}

_CODE_RE = re.compile(r"\bCode:\s*(\d+)")
_HTTP_STATUS_RE = re.compile(r"HTTP status (\d{3})")
# Rejected by the client library while encoding the batch: the values do not fit the columns.
_DATA_EXCEPTIONS = (DataError, TypeError, ValueError, OverflowError, AttributeError, struct.error)
_MAX_MESSAGE = 500


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of ``exc``: its ``code`` attribute, else ``Code: N`` in its text."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE_RE.search(str(exc))
    return int(match.group(1)) if match else None


def classify(exc: BaseException) -> Kind:
    """``"permanent"`` when retrying the same rows must fail again, else ``"transient"``."""
    code = error_code(exc)
    if code is not None:
        if code == 252 and "Too many partitions for single INSERT block" in str(exc):
            return "permanent"  # the batch spans too many months: smaller batches pass
        return "permanent" if code in PERMANENT_CODES else "transient"
    status = _HTTP_STATUS_RE.search(str(exc))
    if status is not None:
        # 400 without a ClickHouse code: the request body was refused; 413: the batch is too large.
        return "permanent" if int(status.group(1)) in (400, 413) else "transient"
    if isinstance(exc, ProgrammingError) and "Unrecognized column" in str(exc):
        return "permanent"  # the table lacks a column of the batch: schema mismatch
    if isinstance(exc, OperationalError):
        return "transient"
    if isinstance(exc, _DATA_EXCEPTIONS):
        return "permanent"
    return "transient"


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line, bounded, secret-free description of ``exc``."""
    code = error_code(exc)
    name = getattr(exc, "name", None) or PERMANENT_CODES.get(code or -1) or TRANSIENT_CODES.get(code or -1)
    label = f"{name} ({code})" if name and code is not None else type(exc).__name__
    text = " ".join(str(exc).split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    return f"{label}: {text}"


def translate(
    exc: BaseException, action: str, secrets: Iterable[str] = ()
) -> SinkTransientError | SinkPermanentError:
    """The streamer error for a library failure during ``action`` (raise it ``from exc``)."""
    message = f"ClickHouse {action} failed: {describe(exc, secrets)}"
    if classify(exc) == "permanent":
        return SinkPermanentError(message)
    return SinkTransientError(message)
