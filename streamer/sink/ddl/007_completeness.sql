-- Completeness per site, point and hour: distinct samples stored against the point's collect_interval.
--
-- No new table and no new materialized view: nothing more is written on the insert path. The
-- stored side counts distinct timestamps per (site, point, hour) straight from timeseries_raw:
-- uniqExact(ts) is exact under the duplicates that replays, overlapping windows and repair
-- re-fetches insert (and needs no FINAL). Side by side with a view over the rollup_1h states of
-- 004_rollups, which hold the same information, for a day of a 4,583-point site: 1.8 s against
-- 6.6 s for 24 hours, 0.6 s against 0.8 s for one (bench/completeness.py's data).
-- The expected side: what each collected point promises per hour. Points without a collect_interval
-- (weather.*) are not judged. Filter `completeness_1h` on site and bucket: the filter reaches the
-- primary key of timeseries_raw through toStartOfHour(ts).
CREATE VIEW IF NOT EXISTS {db}.point_expected_1h {on_cluster} AS
SELECT site, point, toUInt64(intDiv(3600, collect_interval)) AS expected
FROM {db}.points FINAL
WHERE deleted = 0 AND collect_enabled = 1 AND collect_interval > 0;

CREATE VIEW IF NOT EXISTS {db}.completeness_1h {on_cluster} AS
SELECT r.site AS site, r.point AS point, r.bucket AS bucket,
       least(r.samples, e.expected) AS stored, e.expected AS expected
FROM
(
    SELECT site, point, toStartOfHour(ts) AS bucket, toUInt64(uniqExact(ts)) AS samples
    FROM {db}.timeseries_raw
    GROUP BY site, point, bucket
) AS r
INNER JOIN {db}.point_expected_1h AS e ON r.site = e.site AND r.point = e.point;

-- What a repair window brought back (streamer.models.SyncRun.samples_recovered; 0 for other kinds).
ALTER TABLE {db}.sync_runs {on_cluster} ADD COLUMN IF NOT EXISTS samples_recovered UInt64 DEFAULT 0 AFTER error;
