"""ClickHouse's own cost of a day of one site: inserts, rollup recomputes and the merges they cause.

    .venv/bin/python bench/rollup_merges.py [--hours 24] [--points 4583] [--repeat 2]

``bench/sink.py`` times the inserts only; the merges they leave behind run later, on the same two
cores (with 004's per-sample rollup states they cost more than the inserts; 008's compact hourly
rows are small). Here each variant gets a fresh database with ``streamer migrate``'s schema in the
embedded engine, takes the day in 50,000-row ``INSERT … SELECT`` batches in backfill order (hour by
hour, point by point), each followed by the sink's own recompute of the hours it touched
(``Sink.recompute_rollups``), then waits until no merge runs and the part counts hold still. It
prints the process CPU (every engine thread) until the last insert returned and until the merges
settled, the ratio of the latter to the chosen schema's, the merge threads'
share of it, and the active parts left per table (count, highest merge level).
Variants differ only in the MergeTree ``merge_selector_base`` of some tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._threads import thread_cpu
from streamer.settings import load_settings
from streamer.sink import migrations
from streamer.sink.client import clickhouse_client
from streamer.sink.rollups import Touched
from streamer.sink.writer import Sink

T0 = 1_704_067_200_000
BATCH = 50_000
TABLES = ("timeseries_raw",)  # 006_merge_selector sets its base to 10


@dataclass(frozen=True)
class Variant:
    label: str
    selector_base: dict[str, int]  # table -> merge_selector_base set after the migrations


VARIANTS = [
    Variant("chosen: the migrations (base 10)", {}),
    Variant("ClickHouse's default (base 5)", dict.fromkeys(TABLES, 5)),
]


def batch_sql(k: int, points: int, total: int) -> str:
    lo, n = k * BATCH, min(BATCH, total - k * BATCH)
    return f"""
        INSERT INTO timeseries_raw (site, point, ts, value)
        SETTINGS insert_deduplication_token = 'b{k}', optimize_on_insert = 0
        SELECT 'site_01', concat('point-', toString(intDiv(number, 60) % {points}), '/ahu/supply-air-temp'),
               fromUnixTimestamp64Milli(toInt64({T0} + intDiv(number, {points * 60}) * 3600000
                                                + (number % 60) * 60000), 'UTC'),
               toFloat64(cityHash64(number) % 10000) / 100
        FROM numbers({lo}, {n})"""


def batch_hours(k: int, points: int, total: int) -> Touched:
    """What batch ``k`` of ``batch_sql`` touched, as the sink works it out."""
    lo, n = k * BATCH, min(BATCH, total - k * BATCH)
    minutes = range(lo // 60, (lo + n - 1) // 60 + 1)  # one (point, hour) per 60 consecutive numbers
    hour = T0 // 3_600_000
    name = "point-{}/ahu/supply-air-temp"
    keys = (("site_01", name.format(j % points), (hour + j // points) * 3600) for j in minutes)
    return Touched(frozenset(keys))


def merge_cpu() -> float:
    """CPU seconds so far of this process's merge threads (chdb names them MergeMutate)."""
    return sum(sec for name, sec in thread_cpu(os.getpid()).items() if name.startswith("MergeMutate"))


def settle(client: Client, db: str) -> str:
    """Wait until no merge runs and the active parts hold still for 3 s; returns them per table."""
    parts: list[tuple[str, int, int]] = []
    still = 0
    while still < 3:
        time.sleep(1)
        running = client.command("SELECT count() FROM system.merges")
        rows = client.query(
            "SELECT table, count(), max(level) FROM system.parts WHERE database = {db:String} AND active"
            " GROUP BY table ORDER BY table",
            parameters={"db": db},
        ).result_rows
        now = [(str(table), int(n), int(level)) for table, n, level in rows]
        still = still + 1 if running == 0 and now == parts else 0
        parts = now
    return ", ".join(f"{table} {n} (L{level})" for table, n, level in parts)


def run(variant: Variant, path: str, index: int, points: int, hours: int) -> tuple[float, float, float, str]:
    db = f"bench_{index}"
    settings = load_settings(clickhouse_url=f"chdb://{path}", clickhouse_database=db)
    with clickhouse_client(settings) as client, Sink(settings) as sink:
        migrations.migrate(client, db)
        for table, base in variant.selector_base.items():
            client.command(f"ALTER TABLE {table} MODIFY SETTING merge_selector_base = {base}")
        total = points * hours * 60
        started, merges_before = time.process_time(), merge_cpu()
        for k in range((total + BATCH - 1) // BATCH):
            client.command(batch_sql(k, points, total))
            sink.recompute_rollups(batch_hours(k, points, total))
        inserts = time.process_time() - started
        parts = settle(client, db)
        # The 3 s of settling polls cost next to nothing; merges run on the engine's threads.
        result = inserts, time.process_time() - started, merge_cpu() - merges_before, parts
        client.command(f"DROP DATABASE `{db}`")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, tuple[float, float, float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-merges-") as path:
        for r in range(args.repeat):
            for i in range(len(VARIANTS)):
                variant = VARIANTS[(i + r) % len(VARIANTS)]  # rotated: no variant always runs first
                got = run(variant, path, r * len(VARIANTS) + i, args.points, args.hours)
                print(
                    f"  round {r + 1}: {variant.label}: {got[1]:.1f} CPU-s, merges {got[2]:.1f}", flush=True
                )
                if variant.label not in best or got[1] < best[variant.label][1]:
                    best[variant.label] = got
    chosen = best[VARIANTS[0].label][1]
    print(f"{args.points * args.hours * 60:,} samples in {BATCH:,}-row batches, best of {args.repeat}")
    print(f"  {'variant':<46} {'inserts':>8} {'+merges':>8} {'ratio':>6} {'merges':>7}  parts left")
    for label, (inserts, total, merges, parts) in best.items():
        print(
            f"  {label:<46} {inserts:>7.1f}s {total:>7.1f}s {total / chosen:>5.2f}x {merges:>6.1f}s  {parts}"
        )


if __name__ == "__main__":
    main()
