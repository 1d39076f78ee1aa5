"""Hourly rollups recomputed from deduplicated raw data for the buckets an insert touched.

``rollup_1h`` (ddl/008_compact_rollups.sql) holds one row per (site, point, hour): count, sum, min and
max, with ``computed_at`` as the ReplacingMergeTree version. After every successful insert call of
samples, deduplicated by its token or not, the sink runs ``recompute_sql`` for the (site, point, hour)
keys of the batch: a GROUP BY over ``timeseries_raw FINAL`` restricted to those keys, so each row
equals what a GROUP BY over FINAL answers at that moment, duplicates and corrections included.

Why the version is the server's clock read in a round trip of its own, *before* the recompute query:
a recompute whose version is greater than another's started after that one's version was read, which
was after that one's insert committed; its snapshot of ``timeseries_raw`` is taken later still, so it
contains that insert. The row with the greatest version therefore reflects every insert whose own
recompute wrote a smaller version, whichever worker's query finishes last. Reading now64() inside the
recompute itself would not give that order: ClickHouse may take the query's snapshot of parts before
it folds now64() into a constant.

5-minute buckets are not stored: ``rollup_5m_v`` groups ``timeseries_raw FINAL`` (bench/rollups.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

HOUR_MS: Final = 3_600_000

# {where} is ``_KEYS_FILTER`` for the sink and migration 008's backfill reads everything: one text,
# so the backfill, bench/rollups.py and the sink compute the rows the same way.
RECOMPUTE_1H: Final = """INSERT INTO {db}.rollup_1h (site, point, bucket, count, sum, min, max, computed_at)
SELECT site, point, toStartOfHour(ts) AS bucket, toUInt32(count()), sum(value), min(value), max(value),
       {version}
FROM {db}.timeseries_raw FINAL
WHERE {where}
GROUP BY site, point, bucket"""

# The site/point/ts bounds let ClickHouse prune partitions and parts; the tuple set is the exact
# filter (and reaches the primary key too: toStartOfHour is monotonic).
_KEYS_FILTER: Final = (
    "site IN {sites:Array(String)} AND point IN {points:Array(String)}"
    " AND ts >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
    " AND ts < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
    " AND (site, point, toStartOfHour(ts)) IN {keys:Array(Tuple(String, String, DateTime('UTC')))}"
)
_VERSION_PARAM: Final = "fromUnixTimestamp64Nano({version:Int64}, 'UTC')"
# Read by the sink in a round trip of its own before each recompute (see the module docstring).
VERSION_SQL: Final = "SELECT toUnixTimestamp64Nano(now64(9, 'UTC'))"

# A recompute is never dropped as a repeated block (the cluster's Replicated tables deduplicate
# inserts by default); optimize_on_insert=0 as for the raw inserts.
RECOMPUTE_SETTINGS: Final[dict[str, Any]] = {"insert_deduplicate": 0, "optimize_on_insert": 0}


def recompute_sql(db: str, where: str = _KEYS_FILTER, version: str = _VERSION_PARAM) -> str:
    """The recompute statement for ``db`` (already quoted), rows restricted by ``where``."""
    return RECOMPUTE_1H.format(db=db, where=where, version=version)


def touched_hours(
    sites: Sequence[str], points: Sequence[str], ts_ms: Sequence[int]
) -> set[tuple[str, str, int]]:
    """The (site, point, hour start in epoch seconds) keys of a batch's rows."""
    return {(s, p, t // HOUR_MS * 3600) for s, p, t in zip(sites, points, ts_ms, strict=True)}


def recompute_params(keys: set[tuple[str, str, int]], version: int) -> dict[str, Any]:
    """Parameters of ``recompute_sql()`` for ``keys`` (from ``touched_hours``) at ``version``."""
    hours = [h for _, _, h in keys]
    return {
        "sites": sorted({s for s, _, _ in keys}),
        "points": sorted({p for _, p, _ in keys}),
        "lo": min(hours) * 1000,
        "hi": (max(hours) + 3600) * 1000,
        "keys": sorted(keys),
        "version": version,
    }
