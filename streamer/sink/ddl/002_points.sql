-- Configured points, one row per version. `deleted` is the is_deleted column of ReplacingMergeTree:
-- `SELECT ... FROM points FINAL` shows the current, non-deleted points; a tombstone (point removed or
-- collection disabled) is a row with deleted = 1 and a newer version.
CREATE TABLE IF NOT EXISTS {db}.points {on_cluster}
(
    site             LowCardinality(String),
    point            String,
    collect_enabled  UInt8,
    collect_interval Nullable(UInt32),
    point_type       Nullable(String),
    unit             Nullable(String),
    marker_tags      Array(String),
    kv_tags          Map(String, String),
    metadata         String CODEC(ZSTD(3)),
    deleted          UInt8,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (site, point);
