"""The sink against the real embedded ClickHouse engine (chdb): schema, idempotent inserts, exact
latest values and rollups under duplicate inserts, and error translation.

One migrated database is shared by the module (engine start-up is the slow part); each test writes
its own site, so tests do not see each other's rows.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from clickhouse_connect.driver.client import Client

from streamer.errors import ConfigError, SchemaError, SinkPermanentError, SinkTransientError
from streamer.models import PointRecord, SyncRun
from streamer.settings import Settings, load_settings
from streamer.sink import migrations, tables
from streamer.sink.cli import migrate as migrate_command
from streamer.sink.client import acquire_client, clickhouse_client, release_client
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink

T0 = 1_704_070_200_000  # 2024-01-01T00:50:00Z: data below crosses 5-minute and hour boundaries


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(data_dir=tmp_path_factory.mktemp("sink"), clickhouse_database="sinktest")


@pytest.fixture(scope="module")
def sink(settings: Settings) -> Iterator[Sink]:
    with Sink(settings) as s:
        s.migrate()
        yield s


@pytest.fixture(scope="module")
def client(settings: Settings, sink: Sink) -> Iterator[Client]:
    with clickhouse_client(settings) as c:
        yield c


@pytest.fixture
def site() -> str:
    return f"site_{uuid.uuid4().hex[:8]}"


def _scalar(client: Client, sql: str, **params: Any) -> Any:
    return client.query(sql, parameters=params).result_rows[0][0]


def _insert(sink: Sink, rows: list[tuple[str, str, int, float]], token: str) -> int:
    sites, points, ts, values = (list(c) for c in zip(*rows, strict=True))
    return sink.insert_samples(sites, points, ts, values, token)


def _samples(site: str, points: int, n: int, step_ms: int = 30_000) -> list[tuple[str, str, int, float]]:
    # Values are multiples of 0.25: sums are exact in binary floating point, so equality is exact.
    return [(site, f"p{p}", T0 + i * step_ms, (i % 17) * 0.25 + p) for p in range(points) for i in range(n)]


def test_migrate_is_idempotent_and_records_versions(settings: Settings, client: Client) -> None:
    """A fresh database gets every migration once, recorded in schema_migrations; a rerun applies none."""
    fresh = settings.model_copy(update={"clickhouse_database": f"m_{uuid.uuid4().hex[:8]}"})
    expected = [m.name for m in migrations.load_migrations()]
    with Sink(fresh) as s:
        assert [m.name for m in s.migrate()] == expected
        assert s.migrate() == []
        s.check_schema()
    rows = client.query(
        f"SELECT version, name FROM {fresh.clickhouse_database}.schema_migrations FINAL ORDER BY version"
    ).result_rows
    assert [name for _, name in rows] == expected
    assert [v for v, _ in rows] == list(range(1, len(expected) + 1))


def test_check_schema_names_the_first_missing_migration(settings: Settings, client: Client) -> None:
    """An older schema is refused with the name of the first missing migration."""
    db = f"old_{uuid.uuid4().hex[:8]}"
    older = settings.model_copy(update={"clickhouse_database": db})
    with Sink(older) as s:
        with pytest.raises(SchemaError, match=r"missing migration 001_timeseries_raw: run `streamer"):
            s.check_schema()
        with clickhouse_client(older) as c:
            migrations.migrate(c, db, migrations.load_migrations()[:2])
        with pytest.raises(SchemaError, match=r"missing migration 003_latest_values: run `streamer"):
            s.check_schema()


def test_migrate_command_prints_applied_then_up_to_date(settings: Settings) -> None:
    """`streamer migrate` lists each migration it applied, then says "up to date" on a rerun."""
    fresh = settings.model_copy(update={"clickhouse_database": f"c_{uuid.uuid4().hex[:8]}"})
    runner = CliRunner()
    first = runner.invoke(migrate_command, [], obj=fresh)
    assert first.exit_code == 0, first.output
    names = [m.name for m in migrations.load_migrations()]
    assert first.output.splitlines() == [f"applied {name}" for name in names]
    second = runner.invoke(migrate_command, [], obj=fresh)
    assert second.exit_code == 0
    assert second.output.strip().endswith("up to date")


def test_raw_samples_merge_wider_than_the_default(client: Client) -> None:
    """timeseries_raw carries merge_selector_base 10 (006); the compact rollup_1h of 008 keeps the default."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        " AND name IN ('rollup_5m', 'rollup_1h', 'timeseries_raw') ORDER BY name"
    ).result_rows
    assert [(name, "merge_selector_base = 10" in engine) for name, engine in rows] == [
        ("rollup_1h", False),
        ("timeseries_raw", True),
    ]


def test_insert_counts_are_exact_and_keep_milliseconds(sink: Sink, client: Client, site: str) -> None:
    """Every inserted sample is stored once, values intact, and samples 250 ms apart stay distinct."""
    rows = [*_samples(site, points=3, n=100), (site, "ms", T0, 1.0), (site, "ms", T0 + 250, 2.0)]
    assert _insert(sink, rows, token=f"{site}-a") == 302
    q = "SELECT count() FROM timeseries_raw FINAL WHERE site = {s:String}"
    assert _scalar(client, q, s=site) == 302
    ms = client.query(
        "SELECT toUnixTimestamp64Milli(ts), value FROM timeseries_raw FINAL "
        "WHERE site = {s:String} AND point = 'ms' ORDER BY ts",
        parameters={"s": site},
    ).result_rows
    assert ms == [(T0, 1.0), (T0 + 250, 2.0)]
    total = _scalar(client, "SELECT sum(value) FROM timeseries_raw FINAL WHERE site = {s:String}", s=site)
    assert total == sum(r[3] for r in rows)


class _Column(list[Any]):
    """A list that a weak reference can watch."""


def test_an_inserted_batch_is_freed_without_waiting_for_the_cyclic_gc(
    sink: Sink, client: Client, site: str
) -> None:
    """Once inserted, a batch's columns are released by reference counting alone (no GC pass)."""
    rows = _samples(site, points=2, n=10)
    values = _Column(r[3] for r in rows)
    watch = weakref.ref(values)
    gc.disable()
    try:
        sink.insert_samples(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], values, token=site
        )
        del values
        assert watch() is None
    finally:
        gc.enable()
    assert _scalar(client, "SELECT count() FROM timeseries_raw FINAL WHERE site = {s:String}", s=site) == 20


def test_same_token_is_deduplicated_and_other_tokens_collapse_under_final(
    sink: Sink, client: Client, site: str
) -> None:
    """A retried batch (same token) adds no row at all; a replay (new token) collapses under FINAL."""
    rows = _samples(site, points=2, n=50)
    _insert(sink, rows, token=f"{site}-1")
    _insert(sink, rows, token=f"{site}-1")
    raw = "SELECT count() FROM timeseries_raw WHERE site = {s:String}"
    final = "SELECT count() FROM timeseries_raw FINAL WHERE site = {s:String}"
    assert _scalar(client, raw, s=site) == 100
    _insert(sink, rows, token=f"{site}-2")
    assert _scalar(client, raw, s=site) == 200
    assert _scalar(client, final, s=site) == 100


def _rollup_vs_final(client: Client, site: str, view: str, bucket_fn: str) -> tuple[list[Any], list[Any]]:
    from_view = client.query(
        f"SELECT point, toUnixTimestamp(bucket), count, sum, avg, min, max FROM {view} "
        "WHERE site = {s:String} ORDER BY point, bucket",
        parameters={"s": site},
    ).result_rows
    from_raw = client.query(
        f"SELECT point, toUnixTimestamp({bucket_fn}(ts)) AS b, count(), sum(value), avg(value), "
        "min(value), max(value) FROM timeseries_raw FINAL WHERE site = {s:String} "
        "GROUP BY point, b ORDER BY point, b",
        parameters={"s": site},
    ).result_rows
    return from_view, from_raw


def _insert_with_duplicates(sink: Sink, site: str) -> list[tuple[str, str, int, float]]:
    """The same samples inserted as several batches would: overlaps, replays, corrections."""
    rows = _samples(site, points=3, n=40)  # 20 minutes per point from 00:50: 5 buckets, 2 hours
    _insert(sink, rows, token=f"{site}-window-1")
    _insert(sink, rows[20:], token=f"{site}-overlap")  # overlapping window, different token
    _insert(sink, rows[:5] + rows[:5], token=f"{site}-replay")  # DLQ replay with in-batch duplicates
    corrected = [(s, p, t, v + 100) for s, p, t, v in rows[10:14]]
    _insert(sink, corrected, token=f"{site}-correction")  # same ts, new value: the latest insert wins
    return rows[:10] + corrected + rows[14:]


def test_rollups_are_exact_under_duplicate_inserts(sink: Sink, client: Client, site: str) -> None:
    """5-minute and hourly rollups equal a GROUP BY over timeseries_raw FINAL despite re-inserted rows."""
    expected = _insert_with_duplicates(sink, site)
    for view, fn in (("rollup_5m_v", "toStartOfFiveMinutes"), ("rollup_1h_v", "toStartOfHour")):
        from_view, from_raw = _rollup_vs_final(client, site, view, fn)
        assert from_view == from_raw, view
        assert sum(r[2] for r in from_view) == 120
    p0 = [r for r in expected if r[1] == "p0"]
    first_bucket = [v for _, _, t, v in p0 if t < T0 + 300_000]
    view_rows = _rollup_vs_final(client, site, "rollup_5m_v", "toStartOfFiveMinutes")[0]
    assert view_rows[0] == ("p0", T0 // 1000, 10, sum(first_bucket), sum(first_bucket) / 10, 0.0, 2.25)
    corrected = [r for r in view_rows if r[0] == "p0" and r[1] == T0 // 1000 + 300]
    second_bucket = [v for _, _, t, v in p0 if T0 + 300_000 <= t < T0 + 600_000]
    assert corrected[0][6] == max(second_bucket) > 100  # the correction's later ingested_at wins
    # After merges the replaced rows are gone for good, and still exact.
    for table in ("timeseries_raw", "rollup_1h"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    from_view, from_raw = _rollup_vs_final(client, site, "rollup_1h_v", "toStartOfHour")
    assert from_view == from_raw
    hours = [(r[0], r[1], r[2]) for r in from_view if r[0] == "p1"]
    assert hours == [("p1", T0 // 1000 - 3000, 20), ("p1", T0 // 1000 + 600, 20)]


def test_upgrade_from_the_map_state_rollups_keeps_every_bucket_exact(
    settings: Settings, client: Client
) -> None:
    """A database at 007 (004's maxMap rollups filled by their views) migrates to 008: the old tables
    and views are gone, the backfilled views equal a GROUP BY over FINAL, and new inserts stay exact."""
    db = f"up_{uuid.uuid4().hex[:8]}"
    older = settings.model_copy(update={"clickhouse_database": db})
    known = migrations.load_migrations()
    client.command(f"CREATE DATABASE {db}")
    migrations.migrate(client, db, [m for m in known if m.version <= 7])
    old_rows = _samples("s", points=3, n=40)
    for token, batch in (
        ("w1", old_rows),
        ("w2", old_rows[20:]),
        ("fix", [(s, p, t, v + 9) for s, p, t, v in old_rows[:3]]),
    ):
        sites, points, ts, values = (list(c) for c in zip(*batch, strict=True))
        client.insert(
            f"{db}.timeseries_raw", [sites, points, ts, values], column_names=list(tables.SAMPLE_COLUMNS),
            column_type_names=list(tables.SAMPLE_TYPES), column_oriented=True,
            settings={"insert_deduplication_token": token},
        )  # fmt: skip
    assert _scalar(client, f"SELECT sum(count) FROM {db}.rollup_5m_v") == 120  # the old views work
    with Sink(older) as s:
        assert [m.name for m in s.migrate()] == ["008_compact_rollups", "009_latest_values_view"]
        s.check_schema()
        _insert(s, [("s", "p0", T0 + 3_600_000, 7.0), ("s", "p0", T0, 0.5)], token="after")
    objects = client.query(
        "SELECT name, engine FROM system.tables WHERE database = {d:String} AND name LIKE 'rollup%'"
        " ORDER BY name",
        parameters={"d": db},
    ).result_rows
    assert objects == [("rollup_1h", "ReplacingMergeTree"), ("rollup_1h_v", "View"), ("rollup_5m_v", "View")]
    client.database = db
    try:
        for view, fn in (("rollup_5m_v", "toStartOfFiveMinutes"), ("rollup_1h_v", "toStartOfHour")):
            from_view, from_raw = _rollup_vs_final(client, "s", view, fn)
            assert from_view == from_raw and sum(r[2] for r in from_view) == 121, view
    finally:
        client.database = settings.clickhouse_database


def test_latest_values_follow_the_newest_sample(sink: Sink, client: Client, site: str) -> None:
    """latest_values holds each point's newest sample; re-inserting older samples does not move it."""
    expected = _insert_with_duplicates(sink, site)
    _insert(sink, _samples(site, points=3, n=10), token=f"{site}-old-again")
    latest = client.query(
        "SELECT point, toUnixTimestamp64Milli(ts), value FROM latest_values FINAL "
        "WHERE site = {s:String} ORDER BY point",
        parameters={"s": site},
    ).result_rows
    newest = {p: max((t, v) for _, q, t, v in expected if q == p) for p in ("p0", "p1", "p2")}
    assert latest == [(p, t, v) for p, (t, v) in sorted(newest.items())]


def test_detached_table_is_transient_and_the_retry_loses_nothing(
    sink: Sink, client: Client, site: str
) -> None:
    """With timeseries_raw detached an insert is transient; after ATTACH the retry stores every row."""
    rows = _samples(site, points=2, n=30)
    client.command("DETACH TABLE timeseries_raw")
    try:
        with pytest.raises(SinkTransientError, match="UNKNOWN_TABLE"):
            _insert(sink, rows, token=f"{site}-t")
    finally:
        client.command("ATTACH TABLE timeseries_raw")
    assert _insert(sink, rows, token=f"{site}-t") == 60
    assert _scalar(client, "SELECT count() FROM timeseries_raw WHERE site = {s:String}", s=site) == 60
    assert _scalar(client, "SELECT sum(count) FROM rollup_5m_v WHERE site = {s:String}", s=site) == 60


def test_detached_rollup_table_is_transient_and_the_deduplicated_retry_recomputes(
    sink: Sink, client: Client, site: str
) -> None:
    """With rollup_1h detached the call fails transiently after the raw rows are stored; the retry is
    dropped by its token and still recomputes the rollups."""
    rows = _samples(site, points=2, n=30)
    client.command("DETACH TABLE rollup_1h")
    try:
        with pytest.raises(SinkTransientError, match=r"rollup recompute.*UNKNOWN_TABLE"):
            _insert(sink, rows, token=f"{site}-v")
    finally:
        client.command("ATTACH TABLE rollup_1h")
    raw = "SELECT count() FROM timeseries_raw WHERE site = {s:String}"
    assert _scalar(client, raw, s=site) == 60
    assert _scalar(client, "SELECT count() FROM rollup_1h WHERE site = {s:String}", s=site) == 0
    _insert(sink, rows, token=f"{site}-v")
    assert _scalar(client, raw, s=site) == 60  # dropped as a retry
    for table in ("timeseries_raw FINAL", "rollup_5m_v", "rollup_1h_v"):
        column = "count()" if table.startswith("timeseries") else "sum(count)"
        assert _scalar(client, f"SELECT {column} FROM {table} WHERE site = {{s:String}}", s=site) == 60


def test_a_replay_after_a_crash_before_the_recompute_fills_the_rollups(
    sink: Sink, client: Client, site: str
) -> None:
    """Rows stored under a token with no recompute after them (a crash), then the replay: the insert
    is dropped by the token, the rollups are recomputed and equal a GROUP BY over FINAL."""
    rows = _samples(site, points=3, n=40)
    sites, points, ts, values = (list(c) for c in zip(*rows, strict=True))
    client.insert(
        "timeseries_raw", [sites, points, ts, values], column_names=list(tables.SAMPLE_COLUMNS),
        column_type_names=list(tables.SAMPLE_TYPES), column_oriented=True,
        settings={"insert_deduplication_token": f"{site}-crash"},
    )  # fmt: skip
    assert _scalar(client, "SELECT count() FROM rollup_1h_v WHERE site = {s:String}", s=site) == 0
    _insert(sink, rows, token=f"{site}-crash")
    assert _scalar(client, "SELECT count() FROM timeseries_raw WHERE site = {s:String}", s=site) == 120
    for view, fn in (("rollup_5m_v", "toStartOfFiveMinutes"), ("rollup_1h_v", "toStartOfHour")):
        from_view, from_raw = _rollup_vs_final(client, site, view, fn)
        assert from_view == from_raw and sum(r[2] for r in from_view) == 120, view


async def test_two_sinks_writing_one_bucket_concurrently_leave_it_exact(
    settings: Settings, sink: Sink, client: Client, site: str
) -> None:
    """Two sinks (two workers) insert corrections of the same hour concurrently, over and over: the
    hourly row left is the GROUP BY over FINAL, whatever order their recomputes ran in."""
    with Sink(settings) as other:

        def write(writer: Sink, worker: int, round_: int) -> int:
            rows = [(site, "p", T0 + i * 60_000, float(worker * 1000 + round_ * 10 + i)) for i in range(9)]
            return _insert(writer, rows, token=f"{site}-{worker}-{round_}")

        for round_ in range(8):
            await asyncio.gather(
                asyncio.to_thread(write, sink, 1, round_), asyncio.to_thread(write, other, 2, round_)
            )
            from_view, from_raw = _rollup_vs_final(client, site, "rollup_1h_v", "toStartOfHour")
            assert from_view == from_raw, round_


def test_the_latest_recompute_wins_over_a_slower_older_one(sink: Sink, client: Client, site: str) -> None:
    """A recompute row with an older version written after a newer one (a slow worker) is not read."""
    _insert(sink, [(site, "p", T0, 1.0), (site, "p", T0 + 60_000, 2.0)], token=f"{site}-a")
    client.command(
        "INSERT INTO rollup_1h (site, point, bucket, count, sum, min, max, computed_at) "
        "VALUES ({s:String}, 'p', toStartOfHour(fromUnixTimestamp64Milli({t:Int64}, 'UTC')), 1, 1, 1, 1, "
        "'2000-01-01 00:00:00')",
        parameters={"s": site, "t": T0},
    )
    from_view, from_raw = _rollup_vs_final(client, site, "rollup_1h_v", "toStartOfHour")
    assert from_view == from_raw and from_view[0][2] == 2


def test_bad_rows_are_permanent(sink: Sink, client: Client, site: str) -> None:
    """Rows the table cannot take raise SinkPermanentError (client-side and server-side) and store nothing."""
    with pytest.raises(SinkPermanentError, match="columns cannot take: required argument is not a float"):
        sink.insert_samples([site], ["p"], [T0], ["abc"], token=f"{site}-bad")  # type: ignore[list-item]
    with pytest.raises(SinkPermanentError, match="differ in length"):
        sink.insert_samples([site, site], ["p"], [T0], [1.0], token=f"{site}-ragged")
    month_ms = 31 * 86_400_000
    spread = [(site, "p", T0 + i * month_ms, 1.0) for i in range(101)]  # 101 monthly partitions
    with pytest.raises(SinkPermanentError, match=r"TOO_MANY_PARTS \(252\).*Too many partitions"):
        _insert(sink, spread, token=f"{site}-spread")
    assert _scalar(client, "SELECT count() FROM timeseries_raw WHERE site = {s:String}", s=site) == 0


def test_points_versions_and_tombstones(sink: Sink, client: Client, site: str) -> None:
    """The newest version of a point wins whatever the insert order, and a tombstone hides the point."""
    rec = PointRecord(site=site, point="a", unit="degC", kv_tags={"floor": 2}, updated_at_ms=2_000)
    older = PointRecord(site=site, point="a", unit="degF", updated_at_ms=1_000)
    kept = PointRecord(site=site, point="b", marker_tags=["x"], updated_at_ms=1_000)
    assert sink.insert_points([PointRow.from_record(r) for r in (rec, kept)]) == 2
    sink.insert_points([PointRow.from_record(older), PointRow.tombstone(site, "b", 5_000)])
    rows = client.query(
        "SELECT point, unit, kv_tags, version FROM points FINAL WHERE site = {s:String} ORDER BY point",
        parameters={"s": site},
    ).result_rows
    assert rows == [("a", "degC", {"floor": "2"}, 2_000)]


def test_sync_runs_are_replaced_by_sync_id(sink: Sink, client: Client, site: str) -> None:
    """Recording a run again (e.g. failed then retried) leaves one row per sync_id, the latest."""
    base = dict(
        site=site,
        window_start_ms=T0,
        window_end_ms=T0 + 3_600_000,
        kind="incremental",
        started_at_ms=T0,
        duration_ms=1500,
        api_calls=3,
        pages=2,
        samples_fetched=10,
        records_published=2,
        samples_published=10,
        errors=0,
    )
    sink.insert_sync_runs([SyncRun(sync_id=f"{site}-1", status="failed", error="boom", **base)])
    sink.insert_sync_runs([SyncRun(sync_id=f"{site}-1", status="ok", **base)])
    rows = client.query(
        "SELECT sync_id, status, error, toUnixTimestamp64Milli(window_end) FROM sync_runs FINAL "
        "WHERE site = {s:String}",
        parameters={"s": site},
    ).result_rows
    assert rows == [(f"{site}-1", "ok", None, T0 + 3_600_000)]


async def test_concurrent_inserts_from_threads_are_all_stored(sink: Sink, client: Client, site: str) -> None:
    """Inserts issued concurrently through asyncio.to_thread share the engine safely; all rows land."""
    batches = [[(site, f"p{b}", T0 + i * 1000, float(i)) for i in range(500)] for b in range(6)]
    counts = await asyncio.gather(
        *(asyncio.to_thread(_insert, sink, rows, f"{site}-{n}") for n, rows in enumerate(batches))
    )
    assert counts == [500] * 6
    assert _scalar(client, "SELECT count() FROM timeseries_raw FINAL WHERE site = {s:String}", s=site) == 3000


def test_embedded_clients_are_shared_per_path_and_one_path_per_process(
    settings: Settings, sink: Sink, tmp_path: Path
) -> None:
    """Sinks on one engine share its client until the last release; another path is a clear error."""
    first = acquire_client(settings)
    second = acquire_client(settings)
    assert first is second
    release_client(first)
    assert second.command("SELECT 1") == 1
    release_client(second)
    other = settings.model_copy(update={"data_dir": tmp_path})
    with pytest.raises(ConfigError, match="already open on another path"):
        acquire_client(other)


def test_rollups_of_points_with_any_characters_are_exact(sink: Sink, client: Client, site: str) -> None:
    """Point names with quotes, backslashes, backticks, tabs, newlines and non-ASCII get their own
    rollup rows, equal to a GROUP BY over FINAL (the names reach the recompute as one literal text)."""
    names = ["a'b", "c\\d", "e`f", "g\th", "i\nj", "zoné/温度", "'", "\\", "\\'", "$p0$", "k"]
    rows = [(site, name, T0 + i * 60_000, float(i + n)) for n, name in enumerate(names) for i in range(30)]
    assert _insert(sink, rows, token=f"{site}-names") == len(rows)
    from_view, from_raw = _rollup_vs_final(client, site, "rollup_1h_v", "toStartOfHour")
    assert from_view == from_raw
    assert sorted({r[0] for r in from_view}) == sorted(names)
    assert sum(r[2] for r in from_view) == len(rows)
