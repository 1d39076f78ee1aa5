"""Do the rollups pay for themselves? Bytes against raw, and a month of one site at 1 h from each.

    .venv/bin/python bench/rollups.py [--days 30] [--points 4583] [--repeat 3]

1. A fresh embedded database with every migration; ``--days`` of one ``--points``-point site at one
   sample a minute built inside ClickHouse (``INSERT … SELECT`` from ``numbers()``, a day per insert),
   with a value mix like the simulator's (analog points: a daily sine around a base plus noise on the
   point's resolution; binary, multistate and setpoint points), so compression is honest.
2. ``rollup_1h`` built through the sink's recompute SQL (``streamer.sink.rollups.recompute_sql``), a
   day at a time; the same SQL with 5-minute buckets fills a bench-only table ``rollup_5m_table``: what a
   stored 5-minute rollup would cost (008 keeps none).
3. Once the background merges settle: compressed bytes of each table (system.parts, active parts).
4. Best of ``--repeat``: the month at 1 h through ``rollup_1h_v`` against the same GROUP BY over
   ``timeseries_raw FINAL``; a day at 5 min through ``rollup_5m_v`` (raw) against the bench table.
   Each answer is folded to one row inside the engine (sum of counts and sums, min, max), so the
   engine's work is timed, not Python decoding millions of rows; the folded answers must agree.

Last line: ``rollup_bytes_pct=… query_ratio=…`` (rollup_1h bytes in % of raw; raw time / rollup time).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.settings import load_settings  # noqa: E402
from streamer.sink import rollups  # noqa: E402
from streamer.sink.client import clickhouse_client  # noqa: E402
from streamer.sink.writer import Sink  # noqa: E402

SITE = "bench-site"
T0 = 1_727_740_800  # 2024-10-01T00:00:00Z, epoch s: 30 days stay in two monthly partitions
DAY_S = 86_400

# number -> point p (0..points-1) and minute m of the day; values in milli-units, then / 1000 so each
# is the double a JSON text like "55.3" parses to. p % 20: 0-1 binary, 2 setpoint, 3 multistate,
# else analog with resolution 0.1, 0.01 or 1 and a per-point base, amplitude, phase and noise.
DAY_SQL = """
INSERT INTO timeseries_raw (site, point, ts, value)
SELECT {site:String} AS site,
       concat('ahu-', toString(intDiv(p, 40)), '/', ['supply_air_temp', 'zone_temp', 'damper_pos',
              'fan_speed', 'co2'][p % 5 + 1], '-', toString(p)) AS point,
       fromUnixTimestamp64Milli(toInt64({day:UInt32} + m * 60 + p % 60) * 1000, 'UTC') AS ts,
       multiIf(
           p % 20 < 2, toFloat64((m + p * 7) % 1440 < 400 + p % 600) ,
           p % 20 = 2, toFloat64(50 + p % 30),
           p % 20 = 3, toFloat64((intDiv(m, 60) + p) % 4 + 1),
           intDiv(toInt64(50000 + (p % 30) * 1000
                          + (1000 + (p % 7) * 2000) * sin(2 * pi() * ((m + p * 13) % 1440) / 1440)
                          + (cityHash64(p, m, {day:UInt32}) % 2001) - 1000) AS raw,
                  [100, 10, 1000][p % 3 + 1]) * [100, 10, 1000][p % 3 + 1] / 1000
       ) AS value
FROM (SELECT intDiv(number, 1440) AS p, number % 1440 AS m FROM numbers({points:UInt64} * 1440))
"""
TABLE_5M = "rollup_5m_table"


def build(client: Client, db: str, days: int, points: int) -> None:
    """Raw samples a day per insert, then the rollups through the sink's recompute SQL."""
    started = time.perf_counter()
    for d in range(days):
        client.command(DAY_SQL, parameters={"site": SITE, "day": T0 + d * DAY_S, "points": points})
    print(f"raw: {days * points * 1440:,} samples in {time.perf_counter() - started:.1f}s", flush=True)
    client.command(f"CREATE TABLE {TABLE_5M} AS rollup_1h")
    recompute_1h = rollups.recompute_sql(f"`{db}`", where=_day_filter(), version=_version())
    recompute_5m = recompute_1h.replace("rollup_1h", TABLE_5M).replace(
        "toStartOfHour", "toStartOfFiveMinutes"
    )
    for label, sql in (("rollup_1h", recompute_1h), (TABLE_5M, recompute_5m)):
        started = time.perf_counter()
        for d in range(days):
            client.command(
                sql, parameters={"site": SITE, "day": T0 + d * DAY_S}, settings=rollups.RECOMPUTE_SETTINGS
            )
        print(f"{label}: recomputed {days} days in {time.perf_counter() - started:.1f}s", flush=True)


def _day_filter() -> str:
    return (
        "site = {site:String} AND ts >= toDateTime({day:UInt32}, 'UTC')"
        " AND ts < toDateTime({day:UInt32} + 86400, 'UTC')"
    )


def _version() -> str:
    return "now64(9, 'UTC')"


def settle(client: Client, timeout_s: float = 600) -> None:
    """Wait for the background merges, so bytes are those of a steady state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not client.command("SELECT count() FROM system.merges WHERE database = currentDatabase()"):
            return
        time.sleep(2)
    print("merges still running after the timeout: bytes are a snapshot", flush=True)


def sizes(client: Client) -> dict[str, tuple[int, int]]:
    rows = client.query(
        "SELECT table, sum(data_compressed_bytes), sum(rows) FROM system.parts"
        " WHERE database = currentDatabase() AND active GROUP BY table"
    ).result_rows
    return {table: (int(b), int(n)) for table, b, n in rows}


def folded(inner: str) -> str:
    return f"SELECT sum(count), sum(sum), min(min), max(max), count() FROM ({inner})"


def month_queries(days: int) -> dict[str, str]:
    lo, hi = T0, T0 + days * DAY_S
    where = f"site = '{SITE}'"
    return {
        "1h rollup_1h_v": folded(
            f"SELECT point, bucket, count, sum, avg, min, max FROM rollup_1h_v WHERE {where}"
            f" AND bucket >= toDateTime({lo}, 'UTC') AND bucket < toDateTime({hi}, 'UTC')"
        ),
        "1h raw FINAL": folded(
            "SELECT point, toStartOfHour(ts) AS bucket, count() AS count, sum(value) AS sum,"
            " avg(value) AS avg, min(value) AS min, max(value) AS max"
            f" FROM timeseries_raw FINAL WHERE {where}"
            f" AND ts >= toDateTime({lo}, 'UTC') AND ts < toDateTime({hi}, 'UTC') GROUP BY point, bucket"
        ),
        "5m (1 day) rollup_5m_v": folded(
            f"SELECT point, bucket, count, sum, avg, min, max FROM rollup_5m_v WHERE {where}"
            f" AND bucket >= toDateTime({lo}, 'UTC') AND bucket < toDateTime({lo + DAY_S}, 'UTC')"
        ),
        "5m (1 day) stored table": folded(
            f"SELECT point, bucket, toUInt64(count) AS count, sum, sum / count AS avg, min, max"
            f" FROM {TABLE_5M} FINAL WHERE {where}"
            f" AND bucket >= toDateTime({lo}, 'UTC') AND bucket < toDateTime({lo + DAY_S}, 'UTC')"
        ),
    }


def best_of(client: Client, sql: str, repeat: int) -> tuple[float, tuple[Any, ...]]:
    best, answer = math.inf, ()
    for _ in range(repeat):
        started = time.perf_counter()
        answer = tuple(client.query(sql).result_rows[0])
        best = min(best, time.perf_counter() - started)
    return best, answer


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Counts, min, max and buckets exactly; the sums up to float summation order."""
    return a[0] == b[0] and a[2:] == b[2:] and math.isclose(a[1], b[1], rel_tol=1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rollups-") as path:
        settings = load_settings(clickhouse_url=f"chdb://{path}", clickhouse_database="bench")
        with Sink(settings) as sink, clickhouse_client(settings) as client:
            sink.migrate()
            build(client, "bench", args.days, args.points)
            settle(client)
            report(client, args)


def report(client: Client, args: argparse.Namespace) -> None:
    size = sizes(client)
    raw_bytes, raw_rows = size["timeseries_raw"]
    print(
        f"timeseries_raw: {raw_bytes / 2**20:,.1f} MiB, {raw_rows:,} rows,"
        f" {raw_bytes / raw_rows:.2f} B/sample"
    )
    for table in ("rollup_1h", TABLE_5M):
        b, n = size[table]
        print(
            f"{table}: {b / 2**20:,.2f} MiB, {n:,} rows, {b / n:.2f} B/row,"
            f" {100 * b / raw_bytes:.1f} % of raw"
        )
    times: dict[str, float] = {}
    answers: dict[str, tuple[Any, ...]] = {}
    for label, sql in month_queries(args.days).items():
        times[label], answers[label] = best_of(client, sql, args.repeat)
        print(f"{label}: {times[label]:.3f}s (best of {args.repeat}) answer {answers[label]}", flush=True)
    pairs = (("1h rollup_1h_v", "1h raw FINAL"), ("5m (1 day) rollup_5m_v", "5m (1 day) stored table"))
    for one, other in pairs:
        if not same(answers[one], answers[other]):
            raise SystemExit(f"answers differ: {one} {answers[one]} against {other} {answers[other]}")
    ratio = times["1h raw FINAL"] / times["1h rollup_1h_v"]
    ratio_5m = times["5m (1 day) rollup_5m_v"] / times["5m (1 day) stored table"]
    print(f"1 h over {args.days} days: rollup {ratio:.1f}x faster than raw FINAL (target >= 10x)")
    print(f"5 min over a day: from raw {ratio_5m:.1f}x the time of a stored 5-minute table")
    pct = 100 * size["rollup_1h"][0] / raw_bytes
    print(f"rollup_bytes_pct={pct:.1f} query_ratio={ratio:.1f}")


if __name__ == "__main__":
    main()
