"""Names and column layouts of the ClickHouse tables the sink writes, and how to read them exactly.

Reading rules (for the query API and anyone else):
- ``timeseries_raw``: ``FINAL`` (or argMax by ``ingested_at``) where counts must be exact; replays
  and overlapping windows leave duplicate rows until merges collapse them.
- ``latest_values``: ``FINAL``, one row per (site, point).
- Rollups: read the views ``rollup_5m_v`` / ``rollup_1h_v`` (columns site, point, bucket, count, sum,
  avg, min, max). ``rollup_1h`` needs ``FINAL`` (the latest recompute per bucket wins); 5-minute
  buckets are computed from ``timeseries_raw FINAL`` by the view.
- ``points``: ``FINAL`` hides deleted points (``deleted`` is the is_deleted column).
- ``sync_runs``: ``FINAL``, one row per sync_id.
"""

from __future__ import annotations

from typing import Final

TIMESERIES_RAW: Final = "timeseries_raw"
POINTS: Final = "points"
LATEST_VALUES: Final = "latest_values"
SYNC_RUNS: Final = "sync_runs"
SCHEMA_MIGRATIONS: Final = "schema_migrations"
ROLLUP_VIEWS: Final = {"5m": "rollup_5m_v", "1h": "rollup_1h_v"}
ROLLUP_BUCKET_MS: Final = {"5m": 300_000, "1h": 3_600_000}

SAMPLE_COLUMNS: Final = ("site", "point", "ts", "value")
# The samples insert's Native block (sink/native.py) names these types: no DESCRIBE round trip per
# insert; ts travels as epoch-ms integers (Int64 is DateTime64(3)'s Native form), no datetimes built.
SAMPLE_TYPES: Final = ("LowCardinality(String)", "String", "DateTime64(3, 'UTC')", "Float64")

POINT_COLUMNS: Final = (
    "site",
    "point",
    "collect_enabled",
    "collect_interval",
    "point_type",
    "unit",
    "marker_tags",
    "kv_tags",
    "metadata",
    "deleted",
    "version",
)
POINT_TYPES: Final = (
    "LowCardinality(String)",
    "String",
    "UInt8",
    "Nullable(UInt32)",
    "Nullable(String)",
    "Nullable(String)",
    "Array(String)",
    "Map(String, String)",
    "String",
    "UInt8",
    "UInt64",
)

SYNC_RUN_COLUMNS: Final = (
    "sync_id",
    "site",
    "window_start_ms",
    "window_end_ms",
    "kind",
    "started_at_ms",
    "duration_ms",
    "api_calls",
    "pages",
    "samples_fetched",
    "records_published",
    "samples_published",
    "errors",
    "status",
    "error",
    "samples_recovered",
)
SYNC_RUN_TYPES: Final = (
    "String",
    "LowCardinality(String)",
    "Int64",
    "Int64",
    "LowCardinality(String)",
    "Int64",
    "Int64",
    "UInt32",
    "UInt32",
    "UInt64",
    "UInt64",
    "UInt64",
    "UInt32",
    "LowCardinality(String)",
    "Nullable(String)",
    "UInt64",
)
