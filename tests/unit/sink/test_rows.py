"""Wire models to insert columns: point versions, tombstones, sync runs."""

from __future__ import annotations

from streamer.models import PointRecord, SyncRun
from streamer.settings import load_settings
from streamer.sink.client import describe_target
from streamer.sink.rows import PointRow, point_columns, sync_run_columns
from streamer.sink.tables import POINT_COLUMNS, POINT_TYPES, SYNC_RUN_COLUMNS, SYNC_RUN_TYPES


def test_point_record_becomes_a_versioned_row() -> None:
    """A PointRecord keeps its fields; non-string tags become JSON text; metadata is sorted JSON."""
    record = PointRecord(
        site="s1",
        point="ahu/1/temp",
        collect_interval=60,
        point_type="temp",
        unit="degC",
        marker_tags=["ahu", "temp"],
        kv_tags={"floor": 3, "zone": "east", "flags": [1, 2]},
        metadata={"z": 1, "a": {"b": True}},
        updated_at_ms=1_700_000_000_123,
    )
    row = PointRow.from_record(record)
    assert row.version == 1_700_000_000_123
    assert row.deleted is False
    assert dict(row.kv_tags) == {"floor": "3", "zone": "east", "flags": "[1,2]"}
    assert row.metadata == '{"a":{"b":true},"z":1}'
    columns = point_columns([row, PointRow.tombstone("s1", "gone", 1_700_000_000_999)])
    assert len(columns) == len(POINT_COLUMNS) == len(POINT_TYPES)
    by_name = dict(zip(POINT_COLUMNS, columns, strict=True))
    assert by_name["point"] == ["ahu/1/temp", "gone"]
    assert by_name["deleted"] == [0, 1]
    assert by_name["collect_enabled"] == [1, 0]
    assert by_name["version"] == [1_700_000_000_123, 1_700_000_000_999]
    assert by_name["marker_tags"] == [["ahu", "temp"], []]
    assert by_name["kv_tags"][1] == {}


def test_sync_run_columns_cover_every_model_field_in_order() -> None:
    """The sync_runs insert carries every SyncRun field, so the table and the model cannot drift."""
    assert set(SYNC_RUN_COLUMNS) == set(SyncRun.model_fields)
    assert len(SYNC_RUN_TYPES) == len(SYNC_RUN_COLUMNS)
    run = SyncRun(
        sync_id="x1",
        site="s1",
        window_start_ms=1,
        window_end_ms=2,
        kind="incremental",
        started_at_ms=3,
        duration_ms=4,
        api_calls=5,
        pages=6,
        samples_fetched=7,
        records_published=8,
        samples_published=9,
        errors=0,
        status="ok",
    )
    columns = sync_run_columns([run])
    assert [c[0] for c in columns] == [getattr(run, name) for name in SYNC_RUN_COLUMNS]


def test_target_description_never_shows_credentials() -> None:
    """Messages name the host and database but never a password, even one written into the URL."""
    settings = load_settings(
        clickhouse_url="https://user:pa55word@ch.example:8443", clickhouse_password="hunter2"
    )
    text = describe_target(settings)
    assert text == "https://ch.example:8443 database streamer"
    assert "pa55word" not in text and "hunter2" not in text
