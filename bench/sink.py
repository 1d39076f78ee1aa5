"""Insert throughput of the sink into the embedded engine (chdb), against the alternatives tried.

    .venv/bin/python bench/sink.py [--rows 1000000] [--batch 50000] [--repeat 1]

Each variant inserts the same rows, in batches, with a dedup token per batch, into a fresh database
holding the full schema (the chosen path recomputes the hourly rollups after each insert: see
streamer/sink/rollups.py; the insert variants without the sink skip it) and prints rows/s
(wall clock) and rows per CPU-second of this process (chdb runs inside it, so that counts the
engine's work too, and it is steadier than wall time on a shared machine), the ratio of each to
the best, and the bytes on disk per row of every table (right after the inserts, before all
merges). Rows are 2,000 points of 2 sites at one sample a minute, grouped by point as the
processor's batches are. The machine is shared: use --repeat to keep each variant's best.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from streamer.settings import load_settings
from streamer.sink import migrations
from streamer.sink.client import clickhouse_client
from streamer.sink.tables import SAMPLE_COLUMNS, SAMPLE_TYPES
from streamer.sink.writer import Sink

T0 = 1_704_067_200_000
Columns = tuple[list[str], list[str], list[int], list[float]]
Insert = Callable[[Client, Sink, Columns, str], None]

NULL_INPUT = """
CREATE TABLE {db}.samples_in (site LowCardinality(String), point String, ts_ms Int64, value Float64)
ENGINE = Null;
CREATE MATERIALIZED VIEW {db}.samples_in_mv TO {db}.timeseries_raw AS
SELECT site, point, fromUnixTimestamp64Milli(ts_ms, 'UTC') AS ts, value FROM {db}.samples_in
"""


@dataclass(frozen=True)
class Variant:
    label: str
    insert: Insert
    schema: str = "full"  # full | raw-only | map-states (004's views: the migrations up to 007)
    extra_sql: str = ""


def make_rows(n: int, points: int = 2_000) -> Columns:
    per = max(1, n // points)
    sites, names, ts, values = [], [], [], []
    for p in range(points):
        for i in range(per):
            sites.append(f"site{p % 2}")
            names.append(f"point-{p:05d}/ahu/supply-air-temp")
            ts.append(T0 + i * 60_000 + p)
            values.append((i % 100) * 0.5)
    return sites[:n], names[:n], ts[:n], values[:n]


def via_sink(client: Client, sink: Sink, cols: Columns, token: str) -> None:
    sink.insert_samples(*cols, token=token)


def native_datetimes(client: Client, sink: Sink, cols: Columns, token: str) -> None:
    stamps = [dt.datetime.fromtimestamp(t / 1000, dt.UTC) for t in cols[2]]
    data = [cols[0], cols[1], stamps, cols[3]]
    client.insert(
        "timeseries_raw", data, column_names=SAMPLE_COLUMNS, column_type_names=SAMPLE_TYPES,
        column_oriented=True, settings={"insert_deduplication_token": token},
    )  # fmt: skip


def null_table(client: Client, sink: Sink, cols: Columns, token: str) -> None:
    client.insert(
        "samples_in", list(cols), column_names=["site", "point", "ts_ms", "value"],
        column_type_names=["LowCardinality(String)", "String", "Int64", "Float64"], column_oriented=True,
        settings={"insert_deduplication_token": token},
    )  # fmt: skip


def raw_insert(client: Client, sink: Sink, cols: Columns, token: str) -> None:
    """The insert alone, as the sink did before 008 (no recompute after it)."""
    client.insert(
        "timeseries_raw", list(cols), column_names=SAMPLE_COLUMNS, column_type_names=SAMPLE_TYPES,
        column_oriented=True, settings={"insert_deduplication_token": token, "optimize_on_insert": 0,
                                        "deduplicate_blocks_in_dependent_materialized_views": 1},
    )  # fmt: skip


def arrow(client: Client, sink: Sink, cols: Columns, token: str) -> None:
    table = pa.table(
        {
            "site": pa.array(cols[0], pa.string()),
            "point": pa.array(cols[1], pa.string()),
            "ts": pa.array(cols[2], pa.timestamp("ms", tz="UTC")),
            "value": pa.array(cols[3], pa.float64()),
        }
    )
    client.insert_arrow("timeseries_raw", table, settings={"insert_deduplication_token": token})


VARIANTS = [
    Variant("chosen: Sink.insert_samples + hourly recompute (008)", via_sink),
    Variant("native columns, datetimes, no recompute", native_datetimes),
    Variant("Null table + MV, epoch-ms Int64, no recompute", null_table, extra_sql=NULL_INPUT),
    Variant("Arrow (pyarrow from lists), no recompute", arrow),
    Variant("before 008: 004's per-sample maxMap views", raw_insert, schema="map-states"),
    Variant("reference: timeseries_raw alone, no rollups", raw_insert, schema="raw-only"),
]


def prepare(client: Client, db: str, variant: Variant) -> None:
    client.command(f"DROP DATABASE IF EXISTS `{db}`")
    client.command(f"CREATE DATABASE `{db}`")
    chosen = migrations.load_migrations()
    if variant.schema == "raw-only":
        chosen = chosen[:1]
    elif variant.schema == "map-states":
        chosen = [m for m in chosen if m.version <= 7]
    migrations.migrate(client, db, chosen)
    for statement in migrations.split_statements(migrations.render(variant.extra_sql, db)):
        client.command(statement)


def run(variant: Variant, path: str, index: int, cols: Columns, batch: int) -> tuple[float, float, float]:
    db = f"bench_{index}"
    settings = load_settings(clickhouse_url=f"chdb://{path}", clickhouse_database=db)
    with clickhouse_client(settings) as client, Sink(settings) as sink:
        prepare(client, db, variant)
        n = len(cols[2])
        started, cpu_started = time.perf_counter(), time.process_time()
        for k in range(0, n, batch):
            part: Columns = (cols[0][k : k + batch], cols[1][k : k + batch], cols[2][k : k + batch],
                             cols[3][k : k + batch])  # fmt: skip
            variant.insert(client, sink, part, f"b{k}")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stored = client.query("SELECT count() FROM timeseries_raw FINAL").result_rows[0][0]
        if stored != n:
            raise SystemExit(f"{variant.label}: {stored} rows stored, {n} inserted")
        size = client.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {d:String} AND active",
            parameters={"d": db},
        ).result_rows[0][0]
        client.command(f"DROP DATABASE `{db}`")
    return n / elapsed, n / cpu, size / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cols = make_rows(args.rows)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    disk: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as path:
        for r in range(args.repeat):
            # Rotate the order each round so no variant always runs first (cold engine, page cache).
            for i in range(len(VARIANTS)):
                variant = VARIANTS[(i + r) % len(VARIANTS)]
                rate, cpu_rate, disk[variant.label] = run(variant, path, i, cols, args.batch)
                wall[variant.label] = max(rate, wall.get(variant.label, 0.0))
                cpu[variant.label] = max(cpu_rate, cpu.get(variant.label, 0.0))
    top, cpu_top = max(wall.values()), max(cpu.values())
    print(f"{args.rows:,} rows in {args.batch:,}-row batches, best of {args.repeat}")
    print(f"  {'variant':<56} {'rows/s':>10} {'ratio':>6} {'rows/cpu-s':>11} {'ratio':>6} {'bytes/row':>9}")
    for label, rate in wall.items():
        c = cpu[label]
        print(
            f"  {label:<56} {rate:>10,.0f} {rate / top:>5.2f}x {c:>11,.0f} {c / cpu_top:>5.2f}x"
            f" {disk[label]:>9.2f}"
        )


if __name__ == "__main__":
    main()
