"""refresh_points when the API cannot give a whole listing: the previous table stays, nothing tombstoned."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.errors import AceRetriesExhausted
from streamer.producer.context import ProducerContext, fixed_clock
from streamer.producer.points import PointDigest, digest
from streamer.producer.sync import points_due, refresh_points
from streamer.settings import Settings

SITE = "s"


async def _no_sleep(seconds: float) -> None:
    return None


def _short_listing(request: httpx.Request) -> httpx.Response:
    """Three pages of two, total 6, and page 2 always holds one item."""
    page = int(request.url.params["page"])
    items = [{"name": f"s/p{page}{i}"} for i in range(1 if page == 2 else 2)]
    return httpx.Response(200, json={"page": page, "pages": 3, "per_page": 2, "total": 6, "items": items})


def _context(settings: Settings, previous: dict[str, PointDigest] | None) -> ProducerContext:
    settings = settings.model_copy(
        update={"ace_token": SecretStr("t"), "ace_base_url": "https://ace.test/api", "weather_enabled": False}
    )
    client = AceClient(settings, transport=httpx.MockTransport(_short_listing), sleep=_no_sleep)
    # No Kafka producer: a failed refresh must not publish anything, so touching it would raise.
    ctx = ProducerContext(settings, client, None, fixed_clock(1_000))  # type: ignore[arg-type]
    if previous is not None:
        ctx.book.recover(points={SITE: previous})
    return ctx


def _failures() -> float:
    labels = {"site": SITE, "reason": "list_mismatch"}
    return REGISTRY.get_sample_value("streamer_points_refresh_failures_total", labels) or 0.0


async def test_a_short_listing_keeps_the_previous_table(base_settings: Settings) -> None:
    """A listing short on every attempt: no change published, the table kept, counted, refresh still due."""
    previous = {f"s/p{n}{i}": digest({"point": f"s/p{n}{i}"}) for n in (1, 2, 3) for i in range(2)}
    ctx = _context(base_settings, dict(previous))
    before = _failures()
    try:
        assert await refresh_points(ctx, SITE) == 0
    finally:
        await ctx.client.aclose()  # type: ignore[attr-defined]
    assert ctx.points[SITE] == previous
    assert _failures() - before == 1
    assert points_due(ctx, SITE)


async def test_a_short_listing_without_a_table_fails_the_site(base_settings: Settings) -> None:
    """With no table to fall back on the refresh raises: syncing would drop every sample as unconfigured."""
    ctx = _context(base_settings, None)
    try:
        with pytest.raises(AceRetriesExhausted, match="list_mismatch"):
            await refresh_points(ctx, SITE)
    finally:
        await ctx.client.aclose()  # type: ignore[attr-defined]
    assert SITE not in ctx.points
