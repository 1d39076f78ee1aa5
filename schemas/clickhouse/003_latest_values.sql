-- Latest sample per point, kept by a materialized view. Duplicate inserts are harmless: the row with
-- the greatest ts wins (the last inserted on a tie, as in timeseries_raw). Read with FINAL.
CREATE TABLE IF NOT EXISTS {db}.latest_values {on_cluster}
(
    site        LowCardinality(String),
    point       String,
    ts          DateTime64(3, 'UTC'),
    value       Float64,
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (site, point);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.latest_values_mv {on_cluster} TO {db}.latest_values AS
SELECT site, point, max(ts) AS ts, argMax(value, ts) AS value, max(ingested_at) AS ingested_at
FROM {db}.timeseries_raw
GROUP BY site, point;

-- Points that already had samples before this migration.
INSERT INTO {db}.latest_values
SELECT site, point, max(ts), argMax(value, ts), max(ingested_at) FROM {db}.timeseries_raw FINAL GROUP BY site, point;
