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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streamer.sink.params import StringArray

HOUR_MS: Final = 3_600_000
HOUR_S: Final = 3_600

# {where} is ``_KEYS_FILTER`` for the sink and migration 008's backfill reads everything: one text,
# so the backfill, bench/rollups.py and the sink compute the rows the same way.
RECOMPUTE_1H: Final = """INSERT INTO {db}.rollup_1h (site, point, bucket, count, sum, min, max, computed_at)
SELECT site, point, toStartOfHour(ts) AS bucket, toUInt32(count()), sum(value), min(value), max(value),
       {version}
FROM {db}.timeseries_raw FINAL
WHERE {where}
GROUP BY site, point, bucket"""

# The (site, point, hour) keys of a batch, grouped by hour: each hour's sites and points, OR-ed. A
# batch mixes partitions consumed at different hours, so crossing the whole batch's sites, points and
# hours reread most of a backfill's site at every batch (bench/processor.py: 18 CPU-s of recompute);
# one tuple IN over the keys is exact but reaches no primary key (a scan: twice the CPU of a cross on a
# one-hour batch). Per hour, site IN and point IN reach the key (site, point, ts) and toStartOfHour(ts)
# (monotonic in ts) its ts ranges. The keys cost C-level set building (zip, map, frozenset: about
# 0.2 µs a row), no Python step per row; the grouping is a step per key.
_HOUR_FILTER: Final = (
    "(toStartOfHour(ts) = toDateTime({{h{i}:UInt32}}, 'UTC')"
    " AND site IN {{s{i}:Array(String)}} AND point IN {{p{i}:Array(String)}})"
)
_BOUNDS: Final = (
    "ts >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
)
_VERSION_PARAM: Final = "fromUnixTimestamp64Nano({version:Int64}, 'UTC')"
# Read by the sink in a round trip of its own before each recompute (see the module docstring).
VERSION_SQL: Final = "SELECT toUnixTimestamp64Nano(now64(9, 'UTC'))"

# A recompute is never dropped as a repeated block (the cluster's Replicated tables deduplicate
# inserts by default); optimize_on_insert=0 as for the raw inserts. The engine's threads as for any
# query: with max_threads=1 (2.8 against 3.2 CPU-s for 24 h of a 4,583-point site) a float sum comes
# out in another order than a GROUP BY over FINAL reading the same parts gives, a last bit apart.
RECOMPUTE_SETTINGS: Final[dict[str, Any]] = {"insert_deduplicate": 0, "optimize_on_insert": 0}


def recompute_sql(db: str, where: str, version: str = _VERSION_PARAM) -> str:
    """The recompute statement for ``db`` (already quoted), rows restricted by ``where``."""
    return RECOMPUTE_1H.format(db=db, where=where, version=version)


def keys_filter(touched: Touched) -> str:
    """The WHERE of a recompute of ``touched`` (its parameters: ``recompute_params``)."""
    groups = " OR ".join(_HOUR_FILTER.format(i=i) for i in range(touched.hours))
    return f"{_BOUNDS} AND ({groups})"


@dataclass(frozen=True, slots=True)
class Touched:
    """What a batch touched: its (site, point, hour start in epoch s) keys."""

    keys: frozenset[tuple[str, str, int]]

    @property
    def points(self) -> int:
        """How many distinct (site, point) the keys name."""
        return len({(site, point) for site, point, _ in self.keys})

    @property
    def hours(self) -> int:
        """How many distinct hours the keys name."""
        return len({hour for _, _, hour in self.keys})


def touched_hours(sites: Sequence[str], points: Sequence[str], ts_ms: Sequence[int]) -> Touched:
    """The (site, point, hour) keys of a batch's rows (C-level passes over the columns, no per-row step)."""
    hours = map(HOUR_MS.__rfloordiv__, ts_ms)
    return Touched(frozenset(zip(sites, points, map(HOUR_S.__mul__, hours), strict=False)))


def touched_runs(
    runs: Iterable[tuple[str, str, Sequence[int], int | None]],
) -> set[tuple[str, str, int]]:
    """The (site, point, hour) keys of runs of rows that share a site and point (a record's rows):
    ``touched_hours``' keys, with two C-level passes (min, max) per run instead of a step per row, and
    none for a run whose one hour (epoch s, the 4th item) is known already (None: not known)."""
    keys: set[tuple[str, str, int]] = set()
    add = keys.add
    for site, point, ts_ms, hour in runs:
        if not ts_ms:
            continue
        if hour is not None:
            add((site, point, hour))
            continue
        first = min(ts_ms) // HOUR_MS
        if first == max(ts_ms) // HOUR_MS:
            add((site, point, first * HOUR_S))
        else:
            keys.update((site, point, h * HOUR_S) for h in set(map(HOUR_MS.__rfloordiv__, ts_ms)))
    return keys


def recompute_params(touched: Touched, version: int) -> dict[str, Any]:
    """Parameters of ``recompute_sql(db, keys_filter(touched))`` at ``version`` (epoch ns)."""
    by_hour: dict[int, tuple[set[str], set[str]]] = {}
    for site, point, hour in touched.keys:
        sites, points = by_hour.setdefault(hour, (set(), set()))
        sites.add(site)
        points.add(point)
    params: dict[str, Any] = {
        "lo": min(by_hour) * 1000,
        "hi": (max(by_hour) + HOUR_S) * 1000,
        "version": version,
    }
    for i, hour in enumerate(sorted(by_hour)):
        sites, points = by_hour[hour]
        params |= {f"h{i}": hour, f"s{i}": StringArray(sorted(sites)), f"p{i}": StringArray(sorted(points))}
    return params
