-- 5-minute and hourly rollups, kept by materialized views and EXACT under duplicate inserts.
--
-- Overlapping producer windows and DLQ replays insert the same (site, point, ts) again in other
-- batches, and every insert block reaches the views; a plain sum/count state would count it twice.
-- So a bucket's state is maxMap keyed by ts of (ingested_at, value): merging collapses a duplicate ts
-- into one entry, and the greatest ingested_at wins, which is the row ReplacingMergeTree(ingested_at)
-- keeps in timeseries_raw. count/sum/avg/min/max are computed from the collapsed map when read, so
-- they equal a GROUP BY over `timeseries_raw FINAL`. The price: the state keeps one (ts, value) per
-- sample. Read through rollup_5m_v / rollup_1h_v, which do the merging.
CREATE TABLE IF NOT EXISTS {db}.rollup_5m {on_cluster}
(
    site    LowCardinality(String),
    point   String,
    bucket  DateTime('UTC'),
    samples AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(Tuple(DateTime64(3, 'UTC'), Float64)))
        CODEC(ZSTD(3))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (site, point, bucket);

CREATE TABLE IF NOT EXISTS {db}.rollup_1h {on_cluster}
(
    site    LowCardinality(String),
    point   String,
    bucket  DateTime('UTC'),
    samples AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(Tuple(DateTime64(3, 'UTC'), Float64)))
        CODEC(ZSTD(3))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (site, point, bucket);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_5m_mv {on_cluster} TO {db}.rollup_5m AS
SELECT site, point, toStartOfFiveMinutes(ts) AS bucket, maxMapState([ts], [(ingested_at, value)]) AS samples
FROM {db}.timeseries_raw
GROUP BY site, point, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_1h_mv {on_cluster} TO {db}.rollup_1h AS
SELECT site, point, toStartOfHour(ts) AS bucket, maxMapState([ts], [(ingested_at, value)]) AS samples
FROM {db}.timeseries_raw
GROUP BY site, point, bucket;

-- One row per (site, point, bucket). Filter on site, point and bucket: the filter reaches the
-- rollup table's primary key through the GROUP BY.
CREATE VIEW IF NOT EXISTS {db}.rollup_5m_v {on_cluster} AS
SELECT site, point, bucket,
       toUInt64(length(m.1)) AS count,
       arraySum(arrayMap(x -> x.2, m.2)) AS sum,
       sum / count AS avg,
       arrayMin(arrayMap(x -> x.2, m.2)) AS min,
       arrayMax(arrayMap(x -> x.2, m.2)) AS max
FROM (SELECT site, point, bucket, maxMapMerge(samples) AS m FROM {db}.rollup_5m GROUP BY site, point, bucket);

CREATE VIEW IF NOT EXISTS {db}.rollup_1h_v {on_cluster} AS
SELECT site, point, bucket,
       toUInt64(length(m.1)) AS count,
       arraySum(arrayMap(x -> x.2, m.2)) AS sum,
       sum / count AS avg,
       arrayMin(arrayMap(x -> x.2, m.2)) AS min,
       arrayMax(arrayMap(x -> x.2, m.2)) AS max
FROM (SELECT site, point, bucket, maxMapMerge(samples) AS m FROM {db}.rollup_1h GROUP BY site, point, bucket);

-- Samples that were already there before this migration (a no-op on a new database; harmless when
-- repeated, since the state collapses duplicates).
INSERT INTO {db}.rollup_5m
SELECT site, point, toStartOfFiveMinutes(ts) AS bucket, maxMapState([ts], [(ingested_at, value)])
FROM {db}.timeseries_raw GROUP BY site, point, bucket;

INSERT INTO {db}.rollup_1h
SELECT site, point, toStartOfHour(ts) AS bucket, maxMapState([ts], [(ingested_at, value)])
FROM {db}.timeseries_raw GROUP BY site, point, bucket;
