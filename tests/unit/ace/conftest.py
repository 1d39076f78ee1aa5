"""Fixtures of the ACE client tests: settings with a known token, a recording fake sleep, a client factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.settings import Settings
from tests.unit.ace.helpers import BASE_URL, TOKEN, FakeSleep, Handler


@pytest.fixture
def ace_settings(base_settings: Settings) -> Settings:
    """Fast, deterministic client settings: known token, no rate waits unless a test asks for them."""
    return base_settings.model_copy(
        update={
            "ace_token": SecretStr(TOKEN),
            "ace_base_url": BASE_URL,
            "ace_requests_per_s": 1_000_000.0,
            "ace_backoff_base_s": 2.0,
            "ace_backoff_max_s": 30.0,
            "ace_max_attempts": 3,
            "ace_page_size": 8_000,
            "ace_min_page_size": 1_000,
            "ace_points_page_size": 100,
            "ace_max_pages": 200,
            "ace_timeout_s": 5.0,
        }
    )


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


ClientFactory = Callable[..., AceClient]


@pytest.fixture
async def make_client(ace_settings: Settings, fake_sleep: FakeSleep) -> AsyncIterator[ClientFactory]:
    """Builds clients over a MockTransport; rng is fixed at 1.0 so backoff waits are the exact ceilings."""
    clients: list[AceClient] = []

    def factory(handler: Handler, **overrides: Any) -> AceClient:
        extra: dict[str, Any] = {
            k: overrides.pop(k) for k in ("clock", "rng", "wall_clock") if k in overrides
        }
        settings = ace_settings.model_copy(update=overrides)
        client = AceClient(
            settings,
            transport=httpx.MockTransport(handler),
            sleep=fake_sleep,
            rng=extra.get("rng", lambda: 1.0),
            **{k: extra[k] for k in ("clock", "wall_clock") if k in extra},
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
