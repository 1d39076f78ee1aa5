"""The points table: records, updates and tombstones applied in order; judging; rows for ClickHouse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.processor.points_table import DROP_DISABLED, DROP_NOT_CONFIGURED, ROWS_CHUNK, PointsTable
from streamer.settings import Settings
from streamer.sink.rows import PointRow


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


class OldTable:
    """The table as it was (one dict by the whole key, a (site, point) per key): the reference."""

    def __init__(self) -> None:
        self.enabled: dict[str, bool] = {}
        self.names: dict[str, tuple[str, str]] = {}
        self.rows: list[tuple[str, str, bool]] = []

    def apply(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.enabled.pop(key, None)
            site, _, name = key.partition("/")
            self.rows.append((*self.names.pop(key, (site, name)), True))
            return
        self.enabled[key] = value.get("collect_enabled", True)
        self.names[key] = (value["site"], value["point"])
        self.rows.append((value["site"], value["point"], False))

    def judge(self, site: str, name: str) -> str | None:
        enabled = self.enabled.get(f"{site}/{name}")
        if enabled or name.startswith("weather."):
            return None
        return DROP_NOT_CONFIGURED if enabled is None else DROP_DISABLED


NAMES = st.sampled_from(["a", "b", "a/b", "b/c", "", "/", "a/"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(st.tuples(NAMES, NAMES, st.sampled_from(["on", "off", "tombstone", "foreign"])), max_size=30)
)
def test_judging_and_rows_match_one_dict_by_the_whole_key(
    base_settings: Settings, ops: list[tuple[str, str, str]]
) -> None:
    """Per-site dicts judge and name rows exactly as one dict keyed by ``{site}/{point}`` did, with
    "/" in site or point names, keys without "/", tombstones, re-enabled points, foreign values."""
    table, old = PointsTable(base_settings), OldTable()
    for offset, (site, name, op) in enumerate(ops):
        key = f"{site}/{name}" if op != "foreign" else site + name  # foreign: a key its value doesn't name
        value = None if op == "tombstone" else point(site, name, collect_enabled=op != "off")
        table.apply([rec(offset, key, value)])
        old.apply(key, value)
        for judged in ((site, name), ("a", "b/c"), ("a/b", "c")):  # memoised verdicts must follow changes
            assert table.judge(*judged) == old.judge(*judged), judged
    names = ["a", "b", "a/b", "b/c", "", "/", "a/", "weather.x"]
    for site in names:
        for name in names:
            assert table.judge(site, name) == old.judge(site, name), (site, name)
    assert len(table) == len(old.enabled)
    assert [(r.site, r.point, r.deleted) for r in table.take_rows()] == old.rows


def test_a_site_holding_a_slash_and_its_tombstone(table: PointsTable) -> None:
    """A site named "n/y" is judged by its joined key and its tombstone row names it, not "n"."""
    table.apply([rec(0, "n/y/p", point("n/y", "p"))])
    assert table.judge("n/y", "p") is None
    assert table.judge("n", "y/p") is None  # the same Kafka key, as before: one key, one point
    assert table.judge("n", "p") == DROP_NOT_CONFIGURED
    table.apply([rec(1, "n/y/p", None)])
    assert table.judge("n/y", "p") == DROP_NOT_CONFIGURED
    assert [(r.site, r.point, r.deleted) for r in table.take_rows()] == [
        ("n/y", "p", False),
        ("n/y", "p", True),
    ]
    assert len(table) == 0


def test_disabled_then_re_enabled_and_a_key_without_a_slash(table: PointsTable) -> None:
    """A point disabled then re-enabled is kept again; a key without "/" counts but matches no sample."""
    table.apply([rec(0, "s/p", point("s", "p", collect_enabled=False))])
    assert table.judge("s", "p") == DROP_DISABLED
    table.apply([rec(1, "s/p", point("s", "p")), rec(2, "noslash", point("s", "q"))])
    assert table.judge("s", "p") is None
    assert table.judge("s", "q") == DROP_NOT_CONFIGURED
    assert len(table) == 2
    table.apply([rec(3, "noslash", None), rec(4, "noslash", None)])
    assert len(table) == 1
    assert [(r.site, r.point, r.deleted) for r in table.take_rows()][-2:] == [
        ("s", "q", True),
        ("noslash", "", True),
    ]


class FakeReader:
    """``TopicReader.batches_to_end`` over fixed fetches."""

    def __init__(self, fetches: list[list[ConsumerRecord[bytes, bytes]]]) -> None:
        self.fetches = fetches

    async def batches_to_end(self) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        for fetch in self.fetches:
            yield fetch


async def test_recovery_hands_rows_over_in_bounded_chunks(table: PointsTable) -> None:
    """During recovery the points rows reach the sink ROWS_CHUNK at a time, never all at once."""
    n = ROWS_CHUNK * 2 + 123
    records = [rec(i, f"s{i % 7}/p{i}", point(f"s{i % 7}", f"p{i}")) for i in range(n)]
    table._reader = FakeReader([records[i : i + 1000] for i in range(0, n, 1000)])  # type: ignore[assignment]
    chunks: list[int] = []

    async def flush(rows: list[PointRow]) -> None:
        chunks.append(len(rows))
        assert len(table._rows) < ROWS_CHUNK + 1000

    assert await table.wait_recovered(flush) == n
    assert chunks == [ROWS_CHUNK, ROWS_CHUNK]
    rest = table.take_rows()
    assert len(rest) == 123 and rest[-1].point == f"p{n - 1}"
    assert len(table) == n and table.judge("s3", "p3") is None
