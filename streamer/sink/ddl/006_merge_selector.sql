-- Fewer, wider background merges for the sample tables.
--
-- The rollup states hold one entry per sample (004_rollups), so every merge decodes and re-encodes
-- every sample it touches, and ClickHouse's default merge selector (base 5) rewrites each one about
-- four times while a backfill's parts pile up. With base 10 a merge waits for about twice as many
-- parts of a size: fewer levels. For a day of one site (bench/rollup_merges.py) the merge threads'
-- CPU drops from 21-23 to 14-16 s, and the processor bench's from 25-26 to 14-19 s. The price: more
-- parts per partition at a time (10-14 per table after that day, against 4-7), well below the
-- insert limits (parts_to_delay_insert 1000); the selector still lowers the base towards 2 as a
-- partition passes 10 parts and as parts age (hours for small ones, days for large). The setting
-- was exposed in November 2024 (ClickHouse PR 71497): a server older than 24.12 refuses this
-- migration; compose runs 25.8.
ALTER TABLE {db}.rollup_5m {on_cluster} MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.rollup_1h {on_cluster} MODIFY SETTING merge_selector_base = 10;
ALTER TABLE {db}.timeseries_raw {on_cluster} MODIFY SETTING merge_selector_base = 10;
