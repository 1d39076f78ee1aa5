"""AiohttpTransport: httpx requests over aiohttp, raw bodies, and aiohttp's failures as httpx errors."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from streamer.ace.transport import AiohttpTransport

BODY = b'{"point_samples": []}' * 1000


async def _page(request: web.Request) -> web.StreamResponse:
    seen = {"path_qs": request.path_qs, "authorization": request.headers.get("authorization", "")}
    return web.json_response(seen, headers={"x-echo": request.headers.get("x-echo", "")})


async def _gzip(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(BODY), headers={"content-encoding": "gzip"})


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/page")


async def _cut(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-length": str(len(BODY))})
    await response.prepare(request)
    await response.write(BODY[:100])
    assert request.transport is not None
    request.transport.close()  # the connection drops mid-body
    return response


async def _stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-length": str(len(BODY))})
    await response.prepare(request)
    await response.write(BODY[:100])
    await asyncio.sleep(1.5)
    return response


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in [("/page", _page), ("/gzip", _gzip), ("/redirect", _redirect)]:
        app.router.add_get(path, handler)
    app.router.add_get("/cut", _cut)
    app.router.add_get("/stall", _stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _client(url: str, timeout_s: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=AiohttpTransport(timeout_s))


async def test_request_goes_out_as_httpx_built_it(server: str) -> None:
    """Path, query (encoded once, as httpx encoded it) and headers reach the server; the status and
    headers come back."""
    async with _client(server) as client:
        response = await client.get(
            "/page", params={"cursor": "WyJhIiwx/+=", "t": "2024-01-01T00:00:00Z"},
            headers={"authorization": "Bearer tok", "x-echo": "yes"},
        )  # fmt: skip
    assert response.status_code == 200 and response.headers["x-echo"] == "yes"
    sent = response.request.url.raw_path.decode()
    assert sent == "/page?cursor=WyJhIiwx%2F%2B%3D&t=2024-01-01T00%3A00%3A00Z"
    assert response.json() == {"path_qs": sent, "authorization": "Bearer tok"}  # not re-encoded


async def test_bodies_come_raw_and_redirects_are_not_followed(server: str) -> None:
    """A gzip body arrives compressed (the client inflates it within its cap); a 302 is answered as is."""
    async with _client(server) as client:
        async with client.stream("GET", "/gzip") as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        redirect = await client.get("/redirect")
    assert gzip.decompress(raw) == BODY
    assert redirect.status_code == 302


async def test_a_body_cut_short_is_a_request_error(server: str) -> None:
    """A connection dropped mid-body raises an httpx transport error (retried with a smaller page)."""
    async with _client(server) as client, client.stream("GET", "/cut") as response:
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()


async def test_a_stalled_body_times_out(server: str) -> None:
    """No byte for timeout_s during the body is an httpx timeout."""
    async with _client(server, timeout_s=0.3) as client, client.stream("GET", "/stall") as response:
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_a_refused_connection_is_a_connect_error() -> None:
    """Nothing listening: httpx.ConnectError, as httpx's own transport raises."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/page")


async def test_with_a_proxy_every_request_goes_through_it() -> None:
    """With ``proxy`` set the request goes to the proxy, naming the API's URL in full: an API host that
    does not resolve is answered through it."""
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines.append(head.split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    api = "http://ace.invalid:8080/api/sites/?page=1"  # unresolvable: only the proxy can answer it
    transport = AiohttpTransport(5.0, proxy=f"http://127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(api)
            assert response.status_code == 200 and response.json() == {}
    finally:
        listener.close()
        await listener.wait_closed()
    assert lines == [b"GET " + api.encode() + b" HTTP/1.1"]
