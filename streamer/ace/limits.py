"""Per-site request budget: at most N requests in flight and a token-bucket request rate.

The API documents no rate limit, so the client keeps its own, per site (one site's backfill must not
starve another's incremental poll). The bucket *reserves* a token and sleeps off any debt once, instead
of polling the clock: waits are exact, and a fake ``sleep`` in tests sees them as plain numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``capacity`` (at least one)."""

    def __init__(self, rate: float, now: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._at = now

    def reserve(self, now: float) -> float:
        """Take one token; return how long the caller must wait before using it (0 when available)."""
        elapsed = max(0.0, now - self._at)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class _SiteBudget:
    def __init__(self, concurrency: int, bucket: TokenBucket) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.bucket = bucket


class SiteLimits:
    """One budget per site key (``""`` for calls that belong to no site, like ``/sites/``)."""

    def __init__(
        self,
        *,
        concurrency: int,
        rate_per_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._concurrency = concurrency
        self._rate = rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._budgets: dict[str, _SiteBudget] = {}

    def _budget(self, site: str) -> _SiteBudget:
        budget = self._budgets.get(site)
        if budget is None:
            budget = _SiteBudget(self._concurrency, TokenBucket(self._rate, self._clock()))
            self._budgets[site] = budget
        return budget

    @asynccontextmanager
    async def slot(self, site: str | None) -> AsyncIterator[None]:
        """Wait for the site's rate budget, then hold one of its concurrency slots."""
        budget = self._budget(site or "")
        wait = budget.bucket.reserve(self._clock())
        if wait > 0:
            await self._sleep(wait)
        async with budget.semaphore:
            yield
