"""AceClient caps on what the API sends: decoded body bytes (gzip bombs included), gzip decoding."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from streamer.errors import AceRetriesExhausted
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.pages import Cursor, page_body
from tests.unit.ace.conftest import ClientFactory
from tests.unit.ace.helpers import said, sample, ts_page

START_MS = 1_704_067_200_000
BOMB_DECODED = 200 * 1024 * 1024


def _bomb() -> bytes:
    """200 MiB of zeros, gzip-compressed (about 200 KB), built without holding the 200 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(BOMB_DECODED // len(zeros))]
    return b"".join([*parts, packer.flush()])


BOMB = _bomb()


class Chunks(httpx.AsyncByteStream):
    """A body arriving in network-sized chunks, counting how much of it the client took."""

    def __init__(self, data: bytes, size: int = 65_536) -> None:
        self.data, self.size, self.taken = data, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for offset in range(0, len(self.data), self.size):
            self.taken = offset + self.size
            yield self.data[offset : offset + self.size]


def _limit_count(reason: str) -> float:
    return REGISTRY.get_sample_value("streamer_ace_limit_exceeded_total", {"reason": reason}) or 0.0


async def test_a_gzip_bomb_is_refused_without_inflating_it(make_client: ClientFactory) -> None:
    """200 MiB of gzipped zeros against a 1 MiB cap: body_too_large on each attempt, counted, and the
    process never holds more than a few MiB of it."""
    streams: list[Chunks] = []

    def handler(request: httpx.Request) -> httpx.Response:
        streams.append(Chunks(BOMB))
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=streams[-1])

    before = _limit_count("body_too_large")
    client = make_client(handler, ace_max_response_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(AceRetriesExhausted, match=r"last error body_too_large: .*1048576-byte cap"):
            await client.get_weather("s1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024
    assert [s.taken for s in streams] == [65_536] * 3  # stopped in the first chunk of ~200 KB
    assert client.stats.retries == {"body_too_large": 2}
    assert _limit_count("body_too_large") - before == 3


async def test_a_declared_length_over_the_cap_is_refused_unread(make_client: ClientFactory) -> None:
    """A Content-Length over the cap fails the attempt before a byte of the body is read."""
    streams: list[Chunks] = []

    def handler(request: httpx.Request) -> httpx.Response:
        streams.append(Chunks(b"x" * 5000))
        return httpx.Response(200, headers={"content-length": "5000"}, stream=streams[-1])

    with pytest.raises(AceRetriesExhausted, match="Content-Length 5000 over the 2048-byte cap"):
        await make_client(handler, ace_max_response_bytes=2048).get_weather("s1")
    assert [s.taken for s in streams] == [0, 0, 0]


async def test_a_plain_body_over_the_cap_is_refused(make_client: ClientFactory) -> None:
    """Without a Content-Length (chunked), the body is counted as it arrives and refused past the cap."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks(b" " * 10_000, size=1000))

    with pytest.raises(AceRetriesExhausted, match="body_too_large"):
        await make_client(handler, ace_max_response_bytes=4096).get_weather("s1")


async def test_gzip_pages_are_decoded(make_client: ClientFactory) -> None:
    """A gzip-encoded page under the cap decodes to the same samples; the client asks for gzip."""
    seen: list[httpx.Request] = []
    body = orjson.dumps(ts_page([sample("a"), sample("b", value=2)], None))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=Chunks(gzip.compress(body), 7)
        )

    client = make_client(handler)
    pages = [p async for p in client.iter_timeseries("s1", START_MS, START_MS + 60_000)]
    assert said(pages[0].samples) == orjson.loads(body)["point_samples"]
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"
    assert client.stats.bytes == len(body)


async def test_a_broken_gzip_body_is_retried(make_client: ClientFactory) -> None:
    """A gzip body that does not decode, or ends early, is a transient invalid_body, then it succeeds."""
    good = orjson.dumps({"temp": 1, "time": "2024-01-01T00:00:00Z"})
    bodies = [b"not gzip at all", gzip.compress(good)[:-12], gzip.compress(good)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=Chunks(bodies.pop(0)))

    client = make_client(handler)
    assert len(await client.get_weather("s1")) == 1
    assert client.stats.retries == {"invalid_body": 2}


def test_the_default_cap_is_well_above_a_full_page(base_settings: Settings) -> None:
    """The default byte cap holds a 50,000-sample simulator page more than ten times over."""
    config = SimConfig(points=4583)
    body, count = page_body(
        config, Cursor("site_01", START_MS, START_MS + 3_600_000, "interleaved"), 50_000, 0, 0
    )
    assert count == 50_000
    assert base_settings.ace_max_response_bytes > 10 * len(body)
