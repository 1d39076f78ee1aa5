"""The points table: records, updates and tombstones applied in order; judging; rows for ClickHouse."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from streamer.processor.points_table import DROP_DISABLED, DROP_NOT_CONFIGURED, PointsTable
from streamer.settings import Settings


def rec(offset: int, key: str, value: dict[str, Any] | bytes | None) -> ConsumerRecord[bytes, bytes]:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return ConsumerRecord(
        "p", 0, offset, 10_000 + offset, 0, key.encode(), raw, None, len(key), len(raw or b""), []
    )


def point(site: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"site": site, "point": name, "updated_at_ms": 500, **extra}


@pytest.fixture
def table(base_settings: Settings) -> PointsTable:
    return PointsTable(base_settings)


def test_tombstone_removes_and_a_new_record_restores(table: PointsTable) -> None:
    """A point is kept, dropped after its tombstone, and kept again once republished."""
    table.apply([rec(0, "s/s/a", point("s", "s/a"))])
    assert table.judge("s", "s/a") is None
    table.apply([rec(1, "s/s/a", None)])
    assert table.judge("s", "s/a") == DROP_NOT_CONFIGURED
    table.apply([rec(2, "s/s/a", point("s", "s/a"))])
    assert table.judge("s", "s/a") is None
    assert len(table) == 1


def test_disabled_unknown_and_weather_points(table: PointsTable) -> None:
    """collect_enabled=false drops as disabled, unknown as not configured; weather.* is always kept."""
    table.apply(
        [
            rec(0, "s/s/off", point("s", "s/off", collect_enabled=False)),
            rec(1, "s/weather.humidity", point("s", "weather.humidity", collect_enabled=False)),
        ]
    )
    assert table.judge("s", "s/off") == DROP_DISABLED
    assert table.judge("s", "s/nope") == DROP_NOT_CONFIGURED
    assert table.judge("s", "weather.temperature") is None
    assert table.judge("s", "weather.humidity") is None
    assert table.judge("other", "s/off") == DROP_NOT_CONFIGURED


def test_undecodable_points_records_are_skipped_and_counted(table: PointsTable) -> None:
    """A broken ace.points value leaves the point unknown and is counted, without stopping the table."""
    table.apply(
        [rec(0, "s/s/x", b"{oops"), rec(1, "s/s/y", {"site": "s"}), rec(2, "s/s/z", point("s", "s/z"))]
    )
    assert table.undecodable == 2
    assert table.judge("s", "s/x") == DROP_NOT_CONFIGURED
    assert table.judge("s", "s/z") is None


def test_rows_for_clickhouse_are_versioned(table: PointsTable) -> None:
    """Each applied record yields one points row, versioned (tombstones too) by its Kafka timestamp."""
    table.apply(
        [
            rec(
                0,
                "s/s/a",
                point("s", "s/a", unit="degF", kv_tags={"unit": "degF", "n": 1}, marker_tags=["ahu"]),
            ),
            rec(1, "s/s/a", None),
            rec(2, "s/never/seen", None),
        ]
    )
    rows = table.take_rows()
    assert [(r.site, r.point, r.deleted, r.version) for r in rows] == [
        ("s", "s/a", False, 10_000),
        ("s", "s/a", True, 10_001),
        ("s", "never/seen", True, 10_002),
    ]
    assert rows[0].unit == "degF" and dict(rows[0].kv_tags) == {"unit": "degF", "n": "1"}
    assert table.take_rows() == []


async def test_catch_up_before_start_is_an_error(table: PointsTable) -> None:
    """Judging against a table that never read its topic must not silently happen."""
    with pytest.raises(RuntimeError):
        await table.catch_up()
