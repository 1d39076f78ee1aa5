"""A migrated, filled embedded store, a live query API for the attacks (same data as the query tests),
and a stand-alone API that records what it answered (method, path, status)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from streamer.query.api import build_app
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from tests.integration.query.conftest import Data, LiveServer, fill


class RecordingServer(LiveServer):
    """``LiveServer`` whose every answer (refusals included) is recorded as (method, path, status)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.answers: list[tuple[str, str, int]] = []

    async def _start(self) -> None:
        app = build_app(self.settings, QueryService(self.settings))

        async def record(request: web.Request, response: web.StreamResponse) -> None:
            self.answers.append((request.method, request.path, response.status))

        app.on_response_prepare.append(record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"

    def statuses(self, method: str, path: str) -> list[int]:
        return [status for m, p, status in self.answers if (m, p) == (method, path)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Data]:
    """Settings of a private, migrated, filled store (one per module)."""
    data_dir: Path = tmp_path_factory.mktemp("security") / "data"
    settings = load_settings(data_dir=data_dir, kafka_bootstrap_servers="127.0.0.1:1")
    return settings, fill(settings)


@pytest.fixture(scope="module")
def api(store: tuple[Settings, Data]) -> Iterator[LiveServer]:
    """The stand-alone API on the store, with default limits."""
    with LiveServer(store[0]) as server:
        yield server
