-- One row per producer window (streamer.models.SyncRun; the seed's recordMetrics). Re-recording a
-- run replaces it: ReplacingMergeTree keyed by sync_id, the latest recorded_at wins (read with FINAL).
CREATE TABLE IF NOT EXISTS {db}.sync_runs {on_cluster}
(
    sync_id           String,
    site              LowCardinality(String),
    window_start_ms   Int64,
    window_end_ms     Int64,
    kind              LowCardinality(String),
    started_at_ms     Int64,
    duration_ms       Int64,
    api_calls         UInt32,
    pages             UInt32,
    samples_fetched   UInt64,
    records_published UInt64,
    samples_published UInt64,
    errors            UInt32,
    status            LowCardinality(String),
    error             Nullable(String),
    recorded_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    window_start      DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(window_start_ms, 'UTC'),
    window_end        DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(window_end_ms, 'UTC'),
    started_at        DateTime64(3, 'UTC') ALIAS fromUnixTimestamp64Milli(started_at_ms, 'UTC')
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY sync_id;
