"""Hourly rollups recomputed from deduplicated raw data for the buckets an insert touched.

``rollup_1h`` (ddl/008_compact_rollups.sql) holds one row per (site, point, hour): count, sum, min and
max, with ``computed_at`` as the ReplacingMergeTree version. After every successful insert call of
samples, deduplicated by its token or not, the sink runs ``recompute_sql`` for the sites, points and
hours of the batch: a GROUP BY over ``timeseries_raw FINAL`` restricted to them, so each row
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
from dataclasses import dataclass
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

# The points and hours of a batch, crossed: a batch holds whole records (one point, mostly one hour
# each), and naming each (site, point, hour) would cost a Python step per row (about 1 µs a row on
# the shared machine, 4x the sets); the cross product costs C-level set building, and rereads
# extra point-hours only when one batch mixes hours of different points (e.g. a window boundary:
# about twice its rows).
# The ts bounds let ClickHouse prune partitions; site, point and toStartOfHour(ts) (monotonic in ts)
# reach the primary key.
_KEYS_FILTER: Final = (
    "site IN {sites:Array(String)} AND point IN {points:Array(String)}"
    " AND ts >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
    " AND ts < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
    " AND toStartOfHour(ts) IN {hours:Array(DateTime('UTC'))}"
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


@dataclass(frozen=True, slots=True)
class Touched:
    """What a batch touched: its sites, points and hours (hour starts, epoch s); recomputed crossed."""

    sites: frozenset[str]
    points: frozenset[str]
    hours: frozenset[int]


def touched_hours(sites: Sequence[str], points: Sequence[str], ts_ms: Sequence[int]) -> Touched:
    """The sites, points and hours of a batch's rows (C-level passes over the columns, no per-row step)."""
    return Touched(frozenset(sites), frozenset(points), frozenset(map(HOUR_MS.__rfloordiv__, ts_ms)))


def recompute_params(touched: Touched, version: int) -> dict[str, Any]:
    """Parameters of ``recompute_sql()`` for ``touched`` at ``version`` (epoch ns)."""
    return {
        "sites": sorted(touched.sites),
        "points": sorted(touched.points),
        "lo": min(touched.hours) * HOUR_MS,
        "hi": (max(touched.hours) + 1) * HOUR_MS,
        "hours": [h * 3600 for h in sorted(touched.hours)],
        "version": version,
    }
