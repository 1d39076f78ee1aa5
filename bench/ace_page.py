"""Benchmark: cost of one 50,000-sample timeseries page through AceClient vs a bare orjson.loads.

    python bench/ace_page.py
Last line: `client_ms=A bare_ms=B ratio=R samples_per_s=N`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import orjson
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.settings import load_settings

N = 50_000


def _body() -> bytes:
    samples = [
        {
            "name": f"s1/ahu_{i % 500}/sat",
            "time": f"2024-01-01T00:{(i // 500) % 60:02d}:00Z",
            "value": f"{i % 97}.5",
        }
        for i in range(N)
    ]
    return orjson.dumps({"point_samples": samples, "next_cursor": None, "has_more": False})


async def main() -> None:
    body = _body()
    settings = load_settings(ace_token=SecretStr("bench"), ace_base_url="http://ace.invalid/api")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    bare, walked = [], []
    async with AceClient(settings, transport=transport) as client:
        for _ in range(7):
            started = time.perf_counter()
            orjson.loads(body)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            async for page in client.iter_timeseries("s1", 0, 60_000):
                assert len(page.samples) == N
            walked.append(time.perf_counter() - started)
    client_s, bare_s = statistics.median(walked), statistics.median(bare)
    print(f"page bytes={len(body):,}")
    print(
        f"client_ms={client_s * 1e3:.1f} bare_ms={bare_s * 1e3:.1f} ratio={client_s / bare_s:.2f} "
        f"samples_per_s={N / client_s:,.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
