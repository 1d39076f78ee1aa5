-- Completeness per site, point and hour: samples stored against the point's collect_interval.
--
-- The stored side needs no new table: rollup_1h's state (004_rollups) already keeps one entry per
-- distinct sample timestamp of a (site, point, hour), collapsed across duplicate inserts, so
-- `rollup_1h_v.count` is the exact count of distinct samples even while replays and repair
-- re-fetches insert the same rows again. A second materialized view (a uniqExact state per hour)
-- would have been the same information written twice on every insert of the hot path.
-- The expected side: what each collected point should send per hour. Points without a
-- collect_interval (weather.*) are not judged. Read `completeness_1h` with a filter on site and
-- bucket: the filter reaches the rollup table's primary key.
CREATE VIEW IF NOT EXISTS {db}.point_expected_1h {on_cluster} AS
SELECT site, point, toUInt64(intDiv(3600, collect_interval)) AS expected
FROM {db}.points FINAL
WHERE deleted = 0 AND collect_enabled = 1 AND collect_interval > 0;

CREATE VIEW IF NOT EXISTS {db}.completeness_1h {on_cluster} AS
SELECT r.site AS site, r.point AS point, r.bucket AS bucket,
       least(r.count, e.expected) AS stored, e.expected AS expected
FROM {db}.rollup_1h_v AS r
INNER JOIN {db}.point_expected_1h AS e ON r.site = e.site AND r.point = e.point;

-- What a repair window brought back (streamer.models.SyncRun.samples_recovered; 0 for other kinds).
ALTER TABLE {db}.sync_runs {on_cluster} ADD COLUMN IF NOT EXISTS samples_recovered UInt64 DEFAULT 0 AFTER error;
