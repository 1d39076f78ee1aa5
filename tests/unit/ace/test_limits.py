"""Per-site request budget: token bucket and concurrency slots."""

from __future__ import annotations

import asyncio

from streamer.ace.limits import SiteLimits, TokenBucket
from tests.unit.ace.helpers import FakeSleep


def test_bucket_bursts_then_spaces_requests() -> None:
    """rate=2/s: two requests pass at once, the next ones wait 0.5 s more each."""
    bucket = TokenBucket(rate=2.0, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(5)] == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_bucket_refills_with_time() -> None:
    """Tokens come back at `rate` per second, up to the burst capacity."""
    bucket = TokenBucket(rate=2.0, now=0.0)
    bucket.reserve(0.0)
    bucket.reserve(0.0)
    assert bucket.reserve(0.5) == 0.0
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == 0.0
    assert bucket.reserve(100.0) == 0.5


async def test_rate_budget_is_per_site() -> None:
    """One site's debt never delays another site's requests."""
    sleep = FakeSleep()
    limits = SiteLimits(concurrency=4, rate_per_s=1.0, clock=lambda: 0.0, sleep=sleep)
    for site in ("a", "a", "a", "b"):
        async with limits.slot(site):
            pass
    assert sleep.calls == [1.0, 2.0]


async def test_concurrency_is_bounded_per_site() -> None:
    """With concurrency 2, at most 2 requests of a site are in flight; another site has its own slots."""
    limits = SiteLimits(concurrency=2, rate_per_s=1e9, clock=lambda: 0.0, sleep=FakeSleep())
    in_flight: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    both_at_once = False

    async def request(site: str) -> None:
        nonlocal both_at_once
        async with limits.slot(site):
            in_flight[site] += 1
            peak[site] = max(peak[site], in_flight[site])
            both_at_once = both_at_once or (in_flight["a"] > 0 and in_flight["b"] > 0)
            await asyncio.sleep(0.01)
            in_flight[site] -= 1

    await asyncio.gather(*(request(site) for site in "aaaaaabbbb"))
    assert peak == {"a": 2, "b": 2}
    assert both_at_once
