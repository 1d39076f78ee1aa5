"""Attacks on POST /api/v1/sql (issue #12 items 1 and 2), each against the real embedded engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest

from streamer.settings import Settings
from tests.integration.query.conftest import Data, LiveServer


def _post(api: LiveServer, sql: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{api.url}/api/v1/sql", json={"sql": sql}, params=params, timeout=60)


@pytest.fixture(scope="module")
def limited(store: tuple[Settings, Data]) -> Iterator[LiveServer]:
    """The API with small limits: 1 thread, 2 s, 1 MB answers."""
    settings = store[0].model_copy(
        update={
            "api_sql_max_threads": 1,
            "api_sql_max_execution_s": 2.0,
            "api_sql_max_result_bytes": 1_000_000,
        }
    )
    with LiveServer(settings) as server:
        yield server


# ------------------------------------------------------------------------------------ item 1: the guard
@pytest.mark.parametrize("clause", ["APPEND", "TRUNCATE", "", "AND STDOUT", "COMPRESSION 'gzip'"])
def test_into_outfile_writes_no_file(api: LiveServer, tmp_path: Path, clause: str) -> None:
    """SELECT … INTO OUTFILE (any variant) is refused and neither creates nor appends to a file."""
    existing, fresh = tmp_path / "existing.txt", tmp_path / "fresh.txt"
    existing.write_text("before\n")
    for target in (existing, fresh):
        response = _post(api, f"SELECT 1 INTO OUTFILE '{target}' {clause}")
        assert response.status_code == 400, response.text
        assert "INTO OUTFILE" in response.json()["error"]
    assert existing.read_text() == "before\n" and not fresh.exists()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1 # '\n; SELECT 2",
        "SELECT 1 -- '\n; SELECT 2",
        "SELECT 1 /* ' */; SELECT 2",
        "SELECT 1; INSERT INTO points (site, point) VALUES ('evil', 'p')",
        "SELECT ';'; SELECT 2",
    ],
)
def test_second_statement_is_refused_however_hidden(api: LiveServer, statement: str) -> None:
    """Comments ClickHouse knows (# too) cannot hide a second statement: 400, nothing runs."""
    response = _post(api, statement)
    assert response.status_code == 400, response.text
    assert "one statement" in response.json()["error"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT file('/etc/hostname')",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "SELECT * FROM remote('127.0.0.1:9000', system.one)",
        "SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)",
        "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')",
        "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV')",
        "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
        "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
        "SELECT * FROM jdbc('x', 'y', 'z')",
        "SELECT * FROM odbc('x', 'y', 'z')",
        "SELECT * FROM executable('x.sh', 'CSV', 'a String')",
        "SELECT * FROM cluster('default', system.one)",
        "SELECT * FROM input('a String')",
        "SELECT 1 IN file('/etc/hostname')",
        "SELECT * FROM system.one ARRAY JOIN [file('/etc/hostname')] AS x",
        "SELECT * FROM (SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString'))",
        "WITH (SELECT * FROM file('/etc/hostname', 'LineAsString')) AS x SELECT x",
        "DESCRIBE TABLE file('/etc/hostname', 'LineAsString')",
        "EXPLAIN SELECT * FROM file('/etc/hostname', 'LineAsString')",
    ],
)
def test_files_and_network_are_out_of_reach(api: LiveServer, statement: str) -> None:
    """Table functions that read files or the network, and the file() function, are refused anywhere."""
    response = _post(api, statement)
    assert response.status_code == 400, response.text
    assert "refused" in response.json()["error"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1 FORMAT JSON",
        "SELECT 1 FORMAT JSONCompactEachRow",
        "SELECT 1 FORMAT JSONCompactEachRowWithNamesAndTypes",
        "SHOW TABLES FORMAT CSV",
        "EXPLAIN SELECT 1 FORMAT TSV",
        "SELECT 1 SETTINGS max_threads = 64",
        "SELECT 1 SETTINGS readonly = 1",
        "SELECT (SELECT 1 SETTINGS max_execution_time = 0)",
        "SELECT count() FROM timeseries_raw SETTINGS max_result_rows = 0",
    ],
)
def test_format_and_settings_clauses_are_refused(api: LiveServer, statement: str) -> None:
    """FORMAT (even the one the endpoint itself uses) and SETTINGS at any level are refused."""
    response = _post(api, statement)
    assert response.status_code == 400, response.text
    assert "FORMAT" in response.json()["error"] or "SETTINGS" in response.json()["error"]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO points (site, point) VALUES ('evil', 'p')",
        "WITH 1 AS x INSERT INTO points (site, point) VALUES ('evil', 'p')",
        "ALTER TABLE points DELETE WHERE 1",
        "DROP TABLE points",
        "CREATE TABLE evil (x UInt8) ENGINE = Memory",
        "SET readonly = 0",
        "EXISTS TABLE points",
        "OPTIMIZE TABLE timeseries_raw FINAL",
        "SYSTEM STOP MERGES",
        "KILL QUERY WHERE 1",
        "SHOW GRANTS",
        "SHOW USERS",
        "USE system",
        "EXPLAIN INSERT INTO points (site, point) VALUES ('evil', 'p')",
    ],
)
def test_only_read_statements_run(api: LiveServer, statement: str) -> None:
    """Anything but SELECT/WITH, EXPLAIN of a SELECT, DESCRIBE and the catalogue SHOWs is a 400."""
    response = _post(api, statement)
    assert response.status_code == 400, response.text
    assert "only read statements" in response.json()["error"]
    tables = _post(api, "SELECT count() FROM points WHERE site = 'evil'").json()
    assert tables["rows"] == [["0"]]


@pytest.mark.parametrize(
    ("statement", "first_row"),
    [
        ("SELECT count() AS n FROM numbers(10)", ["10"]),
        ("WITH 2 AS x SELECT x * 3", [6]),
        ("SELECT 1 UNION ALL SELECT 2 ORDER BY 1 LIMIT 1", [1]),
        ("SELECT sum(number) FROM numbers_mt(100)", ["4950"]),
        ("SELECT * FROM generate_series(1, 3) LIMIT 1", ["1"]),
        ("SELECT * FROM values('a UInt8', 7)", [7]),
        ("SELECT format('{}-{}', 'a', 'b')", ["a-b"]),
        ("SHOW TABLES LIKE 'points'", ["points"]),
        ("SHOW CREATE TABLE points", None),
        ("DESCRIBE TABLE points", ["site", "LowCardinality(String)", "", "", "", "", ""]),
        ("EXPLAIN SYNTAX SELECT 1", None),
        ("EXPLAIN PIPELINE graph = 1 SELECT 1", ["digraph"]),
        ("-- a comment\nSELECT 'it''s; fine' /* ; */", ["it's; fine"]),
    ],
)
def test_reads_still_answer(api: LiveServer, statement: str, first_row: list[Any] | None) -> None:
    """The guard lets the read statements through, comments and quoted semicolons included."""
    response = _post(api, statement)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert rows and (first_row is None or rows[0] == first_row)


# ------------------------------------------------------------------------------------- item 2: limits
def test_every_query_carries_the_limits(limited: LiveServer) -> None:
    """Threads, time, memory, result rows and bytes are set on the caller's session, read-only last."""
    names = ("max_threads", "max_execution_time", "max_memory_usage", "max_result_rows", "max_result_bytes")
    sql = "SELECT " + ", ".join(f"toString(getSetting('{n}'))" for n in (*names, "readonly"))
    row = _post(limited, sql).json()["rows"][0]
    assert row == ["1", "2", "1000000000", "100000", "1000000", "1"]


def test_numbers_mt_scan_is_bounded_in_threads_and_time(limited: LiveServer) -> None:
    """A huge numbers_mt scan gets one stream (max_threads) and ends with a 422 naming max_execution_time."""
    plan = _post(limited, "EXPLAIN PIPELINE SELECT count() FROM numbers_mt(1000000000000)").json()["rows"]
    assert [r for r in plan if "NumbersRange" in r[0]] == [["      NumbersRange 0 → 1"]]
    response = _post(limited, "SELECT count() FROM numbers_mt(1000000000000)")
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("max_execution_time exceeded (2.0)")


def test_too_many_rows_is_a_413_naming_the_limit(api: LiveServer) -> None:
    """More rows than max_result_rows answer 413 with the limit and its setting."""
    response = _post(api, "SELECT number FROM numbers(1000000)")
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error.startswith("max_result_rows exceeded (100000)") and "STREAMER_API_SQL_MAX_ROWS" in error


def test_a_large_answer_is_cut_at_the_byte_cap_without_ballooning_memory(limited: LiveServer) -> None:
    """A 100 MB answer (constant strings: ClickHouse's own byte count misses them) answers 413 naming
    max_result_bytes, and the process's memory grows by far less than the answer."""
    process = psutil.Process()
    base = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = _post(limited, "SELECT repeat('x', 1000) AS s FROM numbers(100000)")
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 413, response.text
    assert response.json()["error"].startswith("max_result_bytes exceeded (1000000)")
    assert peak - base < 150_000_000, f"RSS grew by {(peak - base) // 1_000_000} MB"


STRANGE_VALUES = [
    ("toUInt256('115792089237316195423570985008687907853269984665640564039457584007913129639935')", None),
    ("toInt128('-170141183460469231731687303715884105728')", "-170141183460469231731687303715884105728"),
    ("toUInt64(18446744073709551615)", "18446744073709551615"),
    ("map((1, 'a'), 2)", {"(1,'a')": 2}),
    ("toDecimal128('1.10', 5)", "1.1"),
    ("toIPv6('2001:db8::1')", "2001:db8::1"),
    ("toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0')", "61f0c404-5cb3-11e7-907b-a6006ad3dba0"),
    ("(1, (2.5, ('x', [toInt256(-1)])))", [1, [2.5, ["x", ["-1"]]]]),
    ("nan", "nan"),
    ("-inf", "-inf"),
    ("[inf, 1]", ["inf", 1]),
    ("unhex('ff')", "\ufffd"),
    ("toDateTime64('2024-01-01 00:00:00.123', 3, 'UTC')", "2024-01-01 00:00:00.123"),
]


@pytest.mark.parametrize(("expression", "expected"), STRANGE_VALUES)
def test_values_json_cannot_carry_arrive_as_strings(api: LiveServer, expression: str, expected: Any) -> None:
    """Wide integers, tuple-keyed maps, decimals, addresses, NaN/inf, bad UTF-8: valid JSON, never a 500."""
    response = _post(api, f"SELECT {expression} AS v")
    assert response.status_code == 200, response.text
    value = orjson.loads(response.content)["rows"][0][0]
    assert value == (expected if expected is not None else expression.split("'")[1])


def test_csv_answers_carry_the_same_values(api: LiveServer) -> None:
    """?format=csv gives a header and the rows, wide integers intact."""
    response = httpx.post(
        f"{api.url}/api/v1/sql",
        json={"sql": "SELECT 1 AS a, 'x' AS b, toUInt256(2) AS c"},
        params={"format": "csv"},
    )
    assert response.status_code == 200 and response.text == "a,b,c\n1,x,2\n"
