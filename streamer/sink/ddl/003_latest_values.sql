-- Latest sample per point, kept by a materialized view. Duplicate inserts are harmless: the row with
-- the greatest ts wins (on a tie, the greatest ingested_at, as in timeseries_raw). Read with FINAL.
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
SELECT site, point, m.1 AS ts, m.3 AS value, m.2 AS ingested_at
FROM (SELECT site, point, max((ts, ingested_at, value)) AS m FROM {db}.timeseries_raw GROUP BY site, point);

-- Points that already had samples before this migration.
INSERT INTO {db}.latest_values
SELECT site, point, m.1, m.3, m.2
FROM (SELECT site, point, max((ts, ingested_at, value)) AS m FROM {db}.timeseries_raw FINAL GROUP BY site, point);
