"""Read-only SQL against the real engine, and gap detection on data with known holes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from streamer.errors import QueryError
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings
from streamer.sink.writer import Sink
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, Data, LiveServer


def _post(live: LiveServer, sql: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/api/v1/sql", json={"sql": sql}, params=params, timeout=30)


def test_sql_reads_answer_with_columns_and_rows(live: LiveServer, filled: tuple[Settings, Data]) -> None:
    """A SELECT returns ClickHouse's column names, types and rows; CSV on request."""
    _, data = filled
    total = sum(len(v) for v in data.samples.values())
    body = _post(
        live, "SELECT site, count() AS n FROM timeseries_raw FINAL GROUP BY site ORDER BY site"
    ).json()
    assert body["columns"] == [
        {"name": "site", "type": "LowCardinality(String)"},
        {"name": "n", "type": "UInt64"},
    ]
    # 64-bit integers travel as strings (JSON readers hold doubles)
    assert sum(int(row[1]) for row in body["rows"]) == total and body["row_count"] == 2
    csv = httpx.post(
        f"{live.url}/api/v1/sql", json={"sql": "SELECT 1 AS a, 'x' AS b"}, params={"format": "csv"}
    )
    assert csv.text == "a,b\n1,x\n"


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "INSERT INTO timeseries_raw (site, point, ts, value) VALUES ('s1', 'temp', now(), 1)",
            "got InsertQuery",
        ),
        ("WITH 1 AS x INSERT INTO points (site, point) VALUES ('s1', 'z')", "got InsertQuery"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is refused"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clauses are refused"),
        ("SELECT number FROM numbers(1000000)", "STREAMER_API_SQL_MAX_ROWS"),
        ("SELEC 1", "fix the SQL syntax"),
        ("SELECT nope FROM timeseries_raw", "fix the SQL"),
        ("SELECT 1; SELECT 2", "send one statement"),
    ],
)
def test_sql_that_writes_or_overreaches_is_a_4xx(
    live: LiveServer, filled: tuple[Settings, Data], statement: str, message: str
) -> None:
    """Writes, table functions, settings and broken SQL answer 400, huge results 413, with the reason."""
    response = _post(live, statement)
    assert response.status_code == (413 if "MAX_ROWS" in message else 400), response.text
    assert message in response.json()["error"]


async def test_refused_sql_leaves_the_writer_and_reader_usable(filled: tuple[Settings, Data]) -> None:
    """After refused writes the engine session of the sink still writes, and the service still reads."""
    settings, _ = filled
    service = QueryService(settings)
    try:
        for statement in (
            "WITH 1 AS x INSERT INTO points (site, point) VALUES ('s9', 'z')",
            "SET readonly = 0",
        ):
            with pytest.raises(QueryError):
                await service.run_sql(statement)
        with Sink(settings) as sink:
            assert sink.insert_samples(["s9"], ["p"], [T0], [1.0], "after-refusal") == 1
        rows = (await service.run_sql("SELECT count() FROM timeseries_raw WHERE site = 's9'")).values()
        assert rows == [["1"]]
        assert (await service.latest("s9", ["p"]))["rows"] == [
            {"point_name": "p", "timestamp": T0, "value": 1.0}
        ]
    finally:
        await service.close()


async def test_gaps_are_exactly_the_holes(service: QueryService) -> None:
    """gappy lost minutes 40-49 and 100-102: two spans from the last sample before each hole to the
    first after it, with the missing counts; every other point is complete and not listed."""
    answer = await service.gaps("s1", TimeRange(T0, T0 + SPAN_MIN * MINUTE), 1.5)
    assert answer["points"] == [
        {
            "point_name": "gappy",
            "collect_interval_s": 60,
            "silent": False,
            "missing": 13,
            "gaps": [
                {"start": T0 + 39 * MINUTE, "end": T0 + 50 * MINUTE + 14, "missing": 10},
                {"start": T0 + 99 * MINUTE, "end": T0 + 103 * MINUTE + 7, "missing": 3},
            ],
        }
    ]


async def test_gaps_stop_at_the_watermark(service: QueryService) -> None:
    """A range running 20 minutes past s1's watermark (the end of its newest ok window) is judged up
    to the watermark only: no point 'misses' the span nobody fetched yet, all three are complete."""
    end = T0 + (SPAN_MIN + 20) * MINUTE
    answer = await service.gaps("s1", TimeRange(T0 + 120 * MINUTE, end), 1.5)
    assert (answer["until"], answer["until_source"], answer["end"]) == (
        T0 + SPAN_MIN * MINUTE,
        "watermark",
        end,
    )
    assert answer["points"] == []
    assert answer["summary"] | {"worst": None} == {
        "points_judged": 3,
        "complete": 3,
        "with_gaps": 0,
        "silent": 0,
        "not_judged": 0,
        "missing_samples": 0,
        "worst": None,
    }


async def test_a_range_before_any_data_is_silent(service: QueryService) -> None:
    """A range before any data (and before the watermark) is one gap per point covering all of it:
    the point is silent, counted apart from points with gaps."""
    empty = await service.gaps("s2", TimeRange(T0 - 10 * MINUTE, T0), 1.5)
    assert empty["points"] == [
        {
            "point_name": "other",
            "collect_interval_s": 60,
            "silent": True,
            "missing": 9,
            "gaps": [{"start": T0 - 10 * MINUTE, "end": T0, "missing": 9}],
        }
    ]
    assert (empty["summary"]["silent"], empty["summary"]["with_gaps"], empty["summary"]["complete"]) == (
        1,
        0,
        0,
    )


async def test_gap_tolerance_hides_short_holes(service: QueryService) -> None:
    """With tolerance 5 intervals the 4-minute hole is no gap; the 11-minute one still is."""
    answer = await service.gaps("s1", TimeRange(T0, T0 + SPAN_MIN * MINUTE), 5.0)
    assert [g["missing"] for g in answer["points"][0]["gaps"]] == [10]


def test_gaps_over_http(live: LiveServer) -> None:
    """GET /gaps with ISO times answers the same spans."""
    params = {"start": "2023-11-14T22:00:00Z", "end": "2023-11-15T01:00:00Z"}
    body = httpx.get(f"{live.url}/api/v1/sites/s1/gaps", params=params, timeout=30).json()
    assert body["start"] == T0 and [p["point_name"] for p in body["points"]] == ["gappy"]
    assert len(body["points"][0]["gaps"]) == 2
