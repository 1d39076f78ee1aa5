"""How fast the simulator serves: ``python -m streamer.sim.bench [--hours 24] [--page-size 50000]``.

Walks one site's window in both orders, first calling the page builder directly (generation and JSON
encoding only), then over HTTP against a simulator in a child process (what a client sees, reading
the bodies without parsing them). Prints samples per second for each.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import orjson

from streamer.sim.config import Order, SimConfig
from streamer.sim.pages import Cursor, page_body, plan_page
from streamer.sim.process import run_simulator_process

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def bench_builder(config: SimConfig, order: Order, end_ms: int, page_size: int) -> tuple[int, float]:
    """(samples, seconds) to build every page of the window in-process."""
    cursor: Cursor | None = Cursor(config.sites[0], START_MS, end_ms, order)
    samples, started = 0, time.perf_counter()
    while cursor is not None:
        _, count = page_body(config, cursor, page_size, config.repeat, 0)
        samples += count
        cursor = plan_page(config, cursor, page_size, config.repeat, 0).next_cursor
    return samples, time.perf_counter() - started


async def bench_http(url: str, site: str, end_ms: int, page_size: int, parse: bool) -> tuple[int, float]:
    """(samples, seconds) to walk the window over HTTP."""
    headers = {"authorization": "Bearer dev-token"}
    params: dict[str, str | int] = {
        "start_time": "2024-01-01T00:00:00Z",
        "end_time": str(end_ms),
        "page_size": page_size,
        "raw_data": "true",
    }
    samples, started = 0, time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=120) as client:
        while True:
            response = await client.get(f"{url}/sites/{site}/timeseries/paginated", params=params)
            response.raise_for_status()
            body = response.content
            if parse:
                page = orjson.loads(body)
                samples += len(page["point_samples"])
                cursor = page.get("next_cursor")
            else:  # find the cursor without parsing 5 MB: it is in the tail
                tail = orjson.loads(b"{" + body[body.rindex(b"]") + 2 :])
                samples += body.count(b'{"name":')
                cursor = tail.get("next_cursor")
            if not cursor:
                break
            params = {"cursor": cursor, "page_size": page_size}
    return samples, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--points", type=int, default=4583)
    args = parser.parse_args()
    end_ms = START_MS + int(args.hours * 3_600_000)
    for order in ("grouped", "interleaved"):
        config = SimConfig(points=args.points, order=order)
        n, secs = bench_builder(config, order, end_ms, args.page_size)
        print(f"builder  {order:11s} {n:>9,} samples {secs:6.2f} s {n / secs:>12,.0f} samples/s")
        async with run_simulator_process(config) as url:
            for parse in (False, True):
                n, secs = await bench_http(url, config.sites[0], end_ms, args.page_size, parse)
                label = "http+parse" if parse else "http"
                print(f"{label:10s} {order:11s} {n:>9,} samples {secs:6.2f} s {n / secs:>12,.0f} samples/s")


if __name__ == "__main__":
    asyncio.run(main())
