"""streamer.sink: the only writer to ClickHouse, and the owner of its schema.

- ``writer.Sink``: synchronous, thread-safe inserts of samples, points and sync runs (the processor
  calls them through ``asyncio.to_thread``), ``migrate()``, ``check_schema()``.
- ``client``: clients for ``chdb:///path`` (embedded; one shared client per engine path and
  database in a process) and ``http(s)://host:port``; the database is created when missing.
- ``migrations``: ``ddl/NNN_name.sql`` (package data) applied in order, recorded in
  ``schema_migrations``; ``streamer migrate`` (``cli``) runs them.
- ``errors``: which ClickHouse failures are transient (outage, overload, detached table: pause and
  retry) and which are permanent (the rows are at fault: bisect, DLQ).
- ``tables``: table names, insert column layouts, and how to read each table exactly.
- ``rollups``: the hourly rollup recompute (its SQL, the touched keys, why its version orders writers).

Exactness under duplicate inserts: overlapping producer windows and DLQ replays insert the same
(site, point, ts) again in other batches. ``timeseries_raw`` collapses them by its ReplacingMergeTree
key (read with FINAL); an identical retry of one batch is dropped earlier by its
``insert_deduplication_token``. ``latest_values`` is a ReplacingMergeTree by ts, so a re-inserted
older sample cannot move it. The hourly rollup ``rollup_1h`` is recomputed by the sink from
``timeseries_raw FINAL`` for every (site, point, hour) an insert call touched, deduplicated or not,
latest recompute winning (``rollups``); ``rollup_5m_v`` groups the raw table itself. Both views,
``rollup_5m_v`` / ``rollup_1h_v``, answer count, sum, avg, min and max equal to a GROUP BY over FINAL
(see ``ddl/008_compact_rollups.sql``).
"""
