"""What completeness and repairs cost for one 4,583-point site (issue #10's figures in README).

    .venv/bin/python bench/completeness.py [--hours 24] [--points 4583]

1. ClickHouse: a fresh embedded store with ``streamer migrate``'s schema takes ``--hours`` of the
   site (one sample a minute per point, in 50,000-row ``INSERT … SELECT`` batches), then times the
   questions the repair loop and ``streamer status`` ask: one hour of the site, the last 24 hours
   (the producer's gauge), and every site's status row. Best of 3 each.
2. ACE API (the simulator, 4,583 configured points, 10 % unconfigured ones with samples): the
   requests and time of one configured-points refresh (what refreshing before every window would add),
   and the timeseries requests of one repair hour at the default page size.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rollup_merges import BATCH, T0, batch_sql
from streamer.ace.client import AceClient
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from streamer.sim.catalog import catalog_of
from streamer.sim.config import SimConfig
from streamer.sim.model import window_total
from streamer.sim.pages import Cursor, plan_page
from streamer.sim.server import SimServer
from streamer.sink import migrations
from streamer.sink.client import clickhouse_client

HOUR = 3_600_000


def fill(settings: Settings, points: int, hours: int) -> None:
    with clickhouse_client(settings) as client:
        migrations.migrate(client, settings.clickhouse_database)
        client.command(f"""
            INSERT INTO points (site, point, collect_enabled, collect_interval, marker_tags, kv_tags,
                                metadata, deleted, version)
            SELECT 'site_01', concat('point-', toString(number), '/ahu/supply-air-temp'), 1, 60, [], map(),
                   '', 0, 1
            FROM numbers({points})""")
        client.command(f"""
            INSERT INTO sync_runs (sync_id, site, window_start_ms, window_end_ms, kind, started_at_ms,
                                   duration_ms, api_calls, pages, samples_fetched, records_published,
                                   samples_published, errors, status)
            VALUES ('first', 'site_01', {T0}, {T0 + HOUR}, 'backfill', {T0}, 1, 1, 1, 1, 1, 1, 0, 'ok')""")
        total = points * hours * 60
        for k in range((total + BATCH - 1) // BATCH):
            client.command(batch_sql(k, points, total))


async def best_of(label: str, call: object, repeat: int = 3) -> None:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    print(f"  {label:<52} {min(times) * 1000:>8.0f} ms (best of {repeat})", flush=True)


async def clickhouse_part(points: int, hours: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-completeness-") as path:
        settings = load_settings(clickhouse_url=f"chdb://{path}", kafka_bootstrap_servers="127.0.0.1:1")
        started = time.perf_counter()
        fill(settings, points, hours)
        print(f"ClickHouse: {points * hours * 60:,} samples in {time.perf_counter() - started:.1f} s")
        service = QueryService(settings)
        try:
            end = T0 + hours * HOUR
            await best_of(
                "completeness of one hour (a revisit)",
                lambda: service.completeness("site_01", TimeRange(end - HOUR, end)),
            )
            await best_of(
                "completeness of 24 hours (GET .../completeness)",
                lambda: service.completeness("site_01", TimeRange(end - 24 * HOUR, end)),
            )
            await best_of(  # the status answer keeps it for STATUS_CACHE_S; this is one computation
                "status completeness of every site (24 h, uncached)",
                lambda: service._completeness_now(end),
            )
        finally:
            await service.close()


async def api_part(points: int) -> None:
    config = SimConfig(points=points)
    cat = catalog_of(config, "site_01")
    async with SimServer(config) as server:
        settings = load_settings(ace_base_url=server.url, ace_token=SecretStr("dev-token"))
        async with AceClient(settings) as client:
            times = []
            for _ in range(5):
                before = client.site_stats("site_01").api_calls
                started = time.perf_counter()
                listed = await client.list_points("site_01")
                times.append(time.perf_counter() - started)
                calls = client.site_stats("site_01").api_calls - before
    print(
        f"ACE API (simulator): one points refresh of {len(listed):,} points: {calls} requests "
        f"({settings.ace_points_page_size} a page), {min(times) * 1000:.0f} ms best of 5"
    )
    pages = _pages(config, settings.ace_page_size, T0, T0 + HOUR)
    samples = window_total(config, cat, T0, T0 + HOUR)
    incremental = _pages(config, settings.ace_page_size, T0, T0 + 15 * 60_000)
    print(
        f"  one incremental window (5 min cycle + 10 min overlap): {incremental} timeseries requests;"
        f" a points refresh before each would add {calls}"
    )
    print(
        f"  one repair hour: {samples:,} samples ({cat.size:,} points with samples), {pages} timeseries "
        f"requests at page_size {settings.ace_page_size:,}"
    )


def _pages(config: SimConfig, page_size: int, start: int, end: int) -> int:
    """Timeseries requests of a fault-free walk of the window (the simulator's page plan)."""
    cursor: Cursor | None = Cursor("site_01", start, end, config.order)
    pages = 0
    while cursor is not None:
        pages += 1
        cursor = plan_page(config, cursor, page_size, config.repeat, 0).next_cursor
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    args = parser.parse_args()
    asyncio.run(api_part(args.points))
    asyncio.run(clickhouse_part(args.points, args.hours))


if __name__ == "__main__":
    main()
