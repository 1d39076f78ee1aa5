"""The project's ACE client against a simulator whose big pages break off mid-transfer: the page size
shrinks, grows back, and the walk still yields exactly expected()."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.ace.pagination import sample_fields
from streamer.settings import Settings
from streamer.sim import FaultConfig, SimConfig, SimServer, expected
from tests.integration.sim.helpers import HOUR, T0, configured_points, summarise, ts_ms

SITE = "alpha"


async def test_page_size_shrinks_on_cut_transfers_and_grows_back(base_settings: Settings) -> None:
    """Pages over 3,000 samples break off on the wire: page 1 goes 8,000 → 4,000 → 2,000, a try at
    4,000 is cut again; once the limit is lifted (after page 3) the size doubles every two good pages
    back to the configured 8,000, and the distinct samples equal expected()."""
    config = SimConfig(sites=(SITE,), points=200, faults=FaultConfig(transfer_limit=3000))
    async with SimServer(config) as server:
        settings = base_settings.model_copy(
            update={
                "ace_base_url": server.url, "ace_token": SecretStr("dev-token"), "ace_page_size": 8000,
                "ace_min_page_size": 1000, "ace_page_grow_after": 2, "ace_backoff_base_s": 0.0,
            }
        )  # fmt: skip
        samples: dict[tuple[str, int], Any] = {}
        sizes: list[int] = []
        async with AceClient(settings) as client:
            async for page in client.iter_timeseries(SITE, T0, T0 + 2 * HOUR):
                sizes.append(page.page_size)
                if len(sizes) == 3:
                    server.state.faults.config = replace(config.faults, transfer_limit=None)
                for sample in page.samples:
                    fields = sample_fields(sample)
                    assert fields is not None
                    name, time, value = fields
                    samples[(name, ts_ms(time))] = value
            retries = dict(client.stats.retries)
        async with httpx.AsyncClient(headers={"authorization": "Bearer dev-token"}) as http:
            points = await configured_points(http, server.url, SITE)
        cut = server.state.faults.counts["transfer_limit"]
    assert sizes[:6] == [2000, 2000, 2000, 2000, 4000, 4000]
    assert len(sizes) > 6 and set(sizes[6:]) == {8000}
    assert retries == {"connection": 3} and cut == 3
    assert summarise(SITE, T0, T0 + 2 * HOUR, samples, points) == expected(config, SITE, T0, T0 + 2 * HOUR)
