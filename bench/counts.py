"""What an exact row count costs for a day of one 4,583-point site (issue #16 item 3's figures in README).

    .venv/bin/python bench/counts.py [--hours 24] [--points 4583] [--replay-share 0.1]

A fresh embedded store with ``streamer migrate``'s schema takes ``--hours`` of the site (one sample
a minute per point, 50,000-row ``INSERT … SELECT`` batches), then ``--replay-share`` of it again as
replays under other deduplication tokens (the duplicates overlapping windows and repairs leave until
merges collapse them). Timed, best of 3, as ``streamer status`` would ask per site: ``count()`` (stored
rows before merges), ``count() … FINAL`` and ``uniqExact(point, ts)`` (exact), right after the
inserts and again after ``OPTIMIZE … FINAL``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.completeness import fill
from bench.rollup_merges import BATCH, batch_sql
from streamer.settings import load_settings
from streamer.sink.client import clickhouse_client

QUERIES = {
    "count() (stored)": "SELECT site, count() FROM timeseries_raw GROUP BY site",
    "count() FINAL": "SELECT site, count() FROM timeseries_raw FINAL GROUP BY site",
    "uniqExact(point, ts)": "SELECT site, uniqExact(point, ts) FROM timeseries_raw GROUP BY site",
}


def timed(client: object, sql: str) -> tuple[float, int]:
    best, value = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        rows = client.query(sql).result_rows  # type: ignore[attr-defined]
        best = min(best, time.perf_counter() - started)
        value = int(rows[0][1])
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument("--replay-share", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), kafka_bootstrap_servers="127.0.0.1:1")
        started = time.perf_counter()
        fill(settings, args.points, args.hours)
        total = args.points * args.hours * 60
        with clickhouse_client(settings) as client:
            replays = int(total * args.replay_share) // BATCH
            for k in range(replays):
                client.command(batch_sql(k, args.points, total).replace(f"'b{k}'", f"'replay{k}'"))
            took = time.perf_counter() - started
            print(f"filled {total:,} rows + {replays * BATCH:,} replayed in {took:.1f} s")
            for phase in ("after the inserts", "after OPTIMIZE FINAL"):
                if phase.startswith("after O"):
                    client.command("OPTIMIZE TABLE timeseries_raw FINAL")
                for label, sql in QUERIES.items():
                    seconds, value = timed(client, sql)
                    print(f"{phase:22} {label:22} {value:>10,} rows  {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
