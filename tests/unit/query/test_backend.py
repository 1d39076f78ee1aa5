"""The CLI's remote backend: which URLs it tries, auth header, and how API errors come back."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from streamer.errors import QueryError, StreamerError
from streamer.query.backend import LocalBackend, RemoteBackend, candidate_urls, make_backend
from streamer.query.params import TimeRange
from streamer.settings import Settings


def test_candidate_urls(base_settings: Settings) -> None:
    """api_url wins; else the processor port then the API port on api_host (0.0.0.0 -> 127.0.0.1)."""
    assert candidate_urls(base_settings.model_copy(update={"api_url": "http://h:1/"})) == ["http://h:1"]
    wild = base_settings.model_copy(
        update={"api_host": "0.0.0.0", "processor_web_port": 6066, "api_port": 8080}
    )
    assert candidate_urls(wild) == ["http://127.0.0.1:6066", "http://127.0.0.1:8080"]
    v6 = base_settings.model_copy(update={"api_host": "::1", "processor_web_port": 1, "api_port": 1})
    assert candidate_urls(v6) == ["http://[::1]:1"]


def test_make_backend_follows_the_clickhouse_target(base_settings: Settings) -> None:
    """Embedded ClickHouse: ask the API over HTTP; a ClickHouse server: read it in-process."""
    assert isinstance(make_backend(base_settings), RemoteBackend)
    server = base_settings.model_copy(update={"clickhouse_url": "http://127.0.0.1:8123"})
    assert isinstance(make_backend(server), LocalBackend)


async def test_remote_falls_through_to_the_answering_port_and_sends_the_token(
    base_settings: Settings,
) -> None:
    """The first URL refuses connections, the second answers; the bearer token rides along."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.port == 6066:
            raise httpx.ConnectError("refused")
        if request.url.path == "/api/v1/openapi.json":
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"site": "s", "rows": []})

    settings = base_settings.model_copy(
        update={"processor_web_port": 6066, "api_port": 8080, "api_token": SecretStr("tok")}
    )
    async with RemoteBackend(settings, transport=httpx.MockTransport(handler)) as backend:
        answer = await backend.samples("s 1", ["a", "b"], TimeRange(1, 2), "raw")
    assert answer == {"site": "s", "rows": []}
    last = seen[-1]
    assert last.url.port == 8080 and last.url.raw_path.startswith(b"/api/v1/sites/s%201/samples?")
    assert dict(last.url.params) == {"points": "a,b", "start": "1", "end": "2", "resolution": "raw"}
    assert last.headers["Authorization"] == "Bearer tok"


async def test_remote_turns_api_errors_into_query_errors(base_settings: Settings) -> None:
    """An API 404 comes back as QueryError with the API's message and status."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/openapi.json":
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"error": "unknown site 'x'", "status": 404})

    async with RemoteBackend(base_settings, transport=httpx.MockTransport(handler)) as backend:
        with pytest.raises(QueryError, match="unknown site 'x'") as info:
            await backend.gaps("x", TimeRange(1, 2), 1.5)
    assert info.value.status == 404


async def test_remote_without_any_api_says_what_to_start(base_settings: Settings) -> None:
    """No URL answers: one error naming the URLs tried and what to start."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with RemoteBackend(base_settings, transport=httpx.MockTransport(handler)) as backend:
        with pytest.raises(StreamerError, match="start `streamer processor`") as info:
            await backend.status()
    assert f":{base_settings.processor_web_port}" in str(info.value)
