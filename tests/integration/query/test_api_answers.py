"""The live API's answers equal ClickHouse's (and the inserted data) for the same question."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from streamer.settings import Settings
from streamer.sink.client import clickhouse_client
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, Data, LiveServer

START = T0 + 7 * MINUTE + 30_000 + 3  # mid-bucket, off the millisecond grid
END = T0 + 150 * MINUTE


def _get(live: LiveServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{live.url}{path}", params=params, timeout=30)


def _clickhouse(settings: Settings, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with clickhouse_client(settings) as client:
        return [tuple(r) for r in client.query(sql, parameters=params).result_rows]


def test_raw_samples_equal_clickhouse_final_and_the_inserted_data(
    live: LiveServer, filled: tuple[Settings, Data]
) -> None:
    """Raw rows over [start, end) are exactly the inserted samples, replays collapsed, ms kept."""
    settings, data = filled
    response = _get(
        live, "/api/v1/sites/s1/samples", points="temp,gappy", start=START, end=END, resolution="raw"
    )
    assert response.status_code == 200
    body = response.json()
    got = [(r["point_name"], r["timestamp"], r["value"]) for r in body["rows"]]
    expected = [("temp", t, v) for t, v in data.series("s1", "temp", START, END)]
    expected = sorted(expected + [("gappy", t, v) for t, v in data.series("s1", "gappy", START, END)])
    assert got == expected
    clickhouse = _clickhouse(
        settings,
        "SELECT point, toUnixTimestamp64Milli(ts), value FROM timeseries_raw FINAL WHERE site = 's1' "
        "AND point IN ('temp', 'gappy') AND ts >= fromUnixTimestamp64Milli({s:Int64}) "
        "AND ts < fromUnixTimestamp64Milli({e:Int64}) ORDER BY point, ts",
        s=START,
        e=END,
    )
    assert got == clickhouse
    assert body["resolution"] == "raw" and body["row_count"] == len(expected)


@pytest.mark.parametrize(("resolution", "bucket_ms"), [("5m", 300_000), ("1h", 3_600_000)])
def test_rollups_equal_a_group_by_over_raw_final(
    live: LiveServer, filled: tuple[Settings, Data], resolution: str, bucket_ms: int
) -> None:
    """Each rollup row (mean, min, max, count per bucket overlapping the range) equals ClickHouse's
    GROUP BY over timeseries_raw FINAL and the same sums over the inserted data."""
    settings, data = filled
    response = _get(
        live, "/api/v1/sites/s1/samples", points="temp", start=START, end=END, resolution=resolution
    )
    assert response.status_code == 200
    rows = response.json()["rows"]
    clickhouse = _clickhouse(
        settings,
        "SELECT toInt64(toUnixTimestamp(toStartOfInterval(ts, INTERVAL {b:UInt32} SECOND))) * 1000 AS bucket,"
        " avg(value), min(value), max(value), count() FROM timeseries_raw FINAL"
        " WHERE site = 's1' AND point = 'temp' "
        "GROUP BY bucket HAVING bucket >= intDiv({s:Int64}, {bm:Int64}) * {bm:Int64} AND bucket < {e:Int64} "
        "ORDER BY bucket",
        b=bucket_ms // 1000,
        bm=bucket_ms,
        s=START,
        e=END,
    )
    assert [r["timestamp"] for r in rows] == [c[0] for c in clickhouse]
    for row, (bucket, avg, low, high, count) in zip(rows, clickhouse, strict=True):
        assert (row["min"], row["max"], row["count"]) == (low, high, count)
        assert row["value"] == pytest.approx(avg, rel=1e-12)
        inserted = [v for t, v in data.samples[("s1", "temp")] if bucket <= t < bucket + bucket_ms]
        assert row["count"] == len(inserted)  # the replayed first hour is not counted twice
        assert row["value"] == pytest.approx(sum(inserted) / len(inserted), rel=1e-12)
    first_bucket = START - START % bucket_ms
    assert rows[0]["timestamp"] == first_bucket


def test_auto_picks_the_finest_resolution_within_the_budget(filled: tuple[Settings, Data]) -> None:
    """With a budget of 100 rows, 2 h of one point (120 raw rows) is served as 5-minute buckets, 3 h of
    three points as hourly ones; raw asked explicitly is a 400 naming the budget setting."""
    settings = filled[0].model_copy(update={"api_row_budget": 100})
    with LiveServer(settings) as live:
        two_hours = _get(live, "/api/v1/sites/s1/samples", points="temp", start=T0, end=T0 + 120 * MINUTE)
        assert two_hours.json()["resolution"] == "5m" and two_hours.json()["row_count"] == 24
        one_hour = _get(live, "/api/v1/sites/s1/samples", points="temp", start=T0, end=T0 + 60 * MINUTE)
        assert one_hour.json()["resolution"] == "raw" and one_hour.json()["row_count"] == 60
        wide = _get(
            live,
            "/api/v1/sites/s1/samples",
            points="temp,fan,gappy",
            start=T0 - 86_400_000,
            end=T0 + SPAN_MIN * MINUTE,
        )
        assert wide.json()["resolution"] == "1h" and wide.json()["row_count"] == 9
        raw = _get(
            live, "/api/v1/sites/s1/samples", points="temp", start=T0, end=T0 + 120 * MINUTE, resolution="raw"
        )
        assert raw.status_code == 400
        assert "STREAMER_API_ROW_BUDGET" in raw.json()["error"] and "resolution=5m" in raw.json()["error"]


def test_csv_has_the_same_rows_as_json(live: LiveServer) -> None:
    """format=csv carries the JSON answer's rows, header first."""
    params = {"points": "fan", "start": T0, "end": T0 + 10 * MINUTE, "resolution": "raw"}
    rows = _get(live, "/api/v1/sites/s1/samples", **params).json()["rows"]
    text = _get(live, "/api/v1/sites/s1/samples", **params, format="csv").text
    lines = text.strip().split("\n")
    assert lines[0] == "point_name,timestamp,value"
    assert lines[1:] == [f"fan,{r['timestamp']},{r['value']!r}" for r in rows] and len(rows) == 10


def test_latest_sites_and_points(live: LiveServer, filled: tuple[Settings, Data]) -> None:
    """latest = the newest inserted sample per point; sites count current points; tag filters apply."""
    _, data = filled
    latest = _get(live, "/api/v1/sites/s1/latest").json()["rows"]
    expected = {p: data.samples[("s1", p)][-1] for p in ("temp", "fan", "gappy")}
    assert {r["point_name"]: (r["timestamp"], r["value"]) for r in latest} == expected
    one = _get(live, "/api/v1/sites/s1/latest", points="fan").json()["rows"]
    assert [r["point_name"] for r in one] == ["fan"]
    sites = {s["site"]: s for s in _get(live, "/api/v1/sites").json()["sites"]}
    assert set(sites) == {"s1", "s2"}
    assert sites["s1"]["points"] == 3 and sites["s1"]["last_sample"] == max(t for t, _ in expected.values())
    by_tag = _get(live, "/api/v1/sites/s1/points", tag=["ahu"]).json()["points"]
    assert [p["point_name"] for p in by_tag] == ["fan", "temp"]
    by_two = _get(live, "/api/v1/sites/s1/points", tag=["temp"], kv="unit:degF").json()["points"]
    assert [p["point_name"] for p in by_two] == ["gappy", "temp"]
    assert by_two[0]["metadata"] == {"bacnet_data": {"device_id": 7}} and by_two[0]["collect_interval"] == 60
    assert _get(live, "/api/v1/sites/s1/points", kv="unit:kW").json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v1/sites/nowhere/samples", {"points": "temp"}, 404, "unknown site 'nowhere'"),
        ("/api/v1/sites/nowhere/points", {}, 404, "GET /api/v1/sites lists"),
        ("/api/v1/sites/s1/samples", {"points": "temp,ghost"}, 404, "unknown point(s) of site 's1': 'ghost'"),
        ("/api/v1/sites/s1/latest", {"points": "ghost"}, 404, "'ghost'"),
        ("/api/v1/sites/s1/samples", {"points": "temp", "start": T0 + 1, "end": T0}, 400, "swap them"),
        ("/api/v1/sites/s1/samples", {"points": "temp", "resolution": "15m"}, 400, "not one of raw, 5m, 1h"),
        ("/api/v1/sites/s1/gaps", {"start": "x"}, 400, "start='x' is not a time"),
        ("/api/v1/sites/s1/gaps", {"tolerance": "0"}, 400, "tolerance"),
        ("/api/v1/sites/s1/points", {"kv": "unit"}, 400, "key:value"),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_to_change(
    live: LiveServer, path: str, params: dict[str, Any], status: int, message: str
) -> None:
    """Unknown site/point, reversed range, bad resolution/time/tolerance/kv: the status and a message."""
    response = _get(live, path, **params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_removed_point_keeps_its_history_but_leaves_the_list(live: LiveServer) -> None:
    """fan_old was tombstoned: not listed among points, yet a known name (no data: zero rows, not 404)."""
    names = [p["point_name"] for p in _get(live, "/api/v1/sites/s1/points").json()["points"]]
    assert "fan_old" not in names
    response = _get(live, "/api/v1/sites/s1/samples", points="fan_old", start=T0, end=T0 + MINUTE)
    assert response.status_code == 200 and response.json()["row_count"] == 0
