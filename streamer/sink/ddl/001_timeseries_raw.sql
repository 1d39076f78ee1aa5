-- Every valid sample, once per (site, point, ts) after ReplacingMergeTree collapse: read with FINAL
-- (or argMax by ingested_at) where exact counts matter. Milliseconds are kept: the seed truncated to
-- seconds and merged distinct samples. Identical retried inserts are dropped by the deduplication
-- window (the sink passes insert_deduplication_token); replays of other batches collapse by key.
CREATE TABLE IF NOT EXISTS {db}.timeseries_raw {on_cluster}
(
    site        LowCardinality(String),
    point       String CODEC(ZSTD(3)),
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    value       Float64 CODEC(Gorilla, ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (site, point, ts)
SETTINGS non_replicated_deduplication_window = 1000;
