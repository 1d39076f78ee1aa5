"""AceClient.iter_timeseries: query, cursor walk, page cap, repeated cursor, lazy pages, page shrink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from streamer.ace.client import AceClient, TimeseriesPage
from streamer.errors import AceRetriesExhausted, PaginationError
from tests.unit.ace.conftest import ClientFactory
from tests.unit.ace.helpers import json_response, said, sample, ts_page

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00.000Z
END_MS = 1_704_070_800_500  # 2024-01-01T01:00:00.500Z


def _scripted(bodies: list[Any]) -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    """A handler answering each request with the next scripted body (or Response)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = bodies[len(seen) - 1]
        return body if isinstance(body, httpx.Response) else json_response(body)

    return seen, handler


async def _walk(client: AceClient) -> list[TimeseriesPage]:
    return [page async for page in client.iter_timeseries("s1", START_MS, END_MS)]


async def test_query_parameters(make_client: ClientFactory) -> None:
    """First page: ISO ms Z times, page_size, raw_data=true, no cursor; next page adds the cursor."""
    seen, handler = _scripted([ts_page([sample("p")], "c2"), ts_page([], None, has_more=False)])
    await _walk(make_client(handler))
    first, second = (dict(r.url.params) for r in seen)
    assert first == {
        "start_time": "2024-01-01T00:00:00.000Z",
        "end_time": "2024-01-01T01:00:00.500Z",
        "page_size": "8000",
        "raw_data": "true",
    }
    assert second == {**first, "cursor": "c2"}
    assert seen[0].url.path == "/api/sites/s1/timeseries/paginated"


async def test_walk_yields_raw_pages_until_has_more_false(make_client: ClientFactory) -> None:
    """Pages come back numbered with the samples as sent; has_more false ends even with a cursor."""
    bodies = [
        ts_page([sample("a", value="1"), sample("b", value=2)], "c2"),
        ts_page([sample("a", value=None)], "c3", has_more=False),
    ]
    seen, handler = _scripted(bodies)
    pages = await _walk(make_client(handler))
    assert [(p.number, p.next_cursor) for p in pages] == [(1, "c2"), (2, None)]
    assert said(pages[0].samples) == bodies[0]["point_samples"]
    assert said(pages[1].samples) == [{"name": "a", "time": "2024-01-01T00:00:00Z", "value": None}]
    assert len(seen) == 2


async def test_walk_ends_on_null_cursor(make_client: ClientFactory) -> None:
    """A null next_cursor ends the walk even when has_more says true."""
    seen, handler = _scripted([ts_page([sample("a")], None, has_more=True)])
    assert [p.number for p in await _walk(make_client(handler))] == [1]
    assert len(seen) == 1


async def test_empty_page_with_cursor_continues(make_client: ClientFactory) -> None:
    """An empty page that carries a cursor is not the end."""
    seen, handler = _scripted([ts_page([], "c2"), ts_page([], "c3"), ts_page([sample("a")], None)])
    pages = await _walk(make_client(handler))
    assert [len(p.samples) for p in pages] == [0, 0, 1]
    assert len(seen) == 3


async def test_repeated_cursor_fails_the_window(make_client: ClientFactory) -> None:
    """A cursor seen twice raises PaginationError (no retry, no infinite loop)."""
    seen, handler = _scripted([ts_page([], "c2"), ts_page([], "c3"), ts_page([], "c2")])
    client = make_client(handler)
    got: list[int] = []
    with pytest.raises(PaginationError, match=r"\(site s1\): cursor repeated after page 3"):
        async for page in client.iter_timeseries("s1", START_MS, END_MS):
            got.append(page.number)
    assert (got, len(seen)) == ([1, 2], 3)


async def test_page_cap_fails_the_window(make_client: ClientFactory) -> None:
    """More pages than ace_max_pages raises PaginationError after exactly max_pages requests."""
    seen: list[httpx.Request] = []

    def endless(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(ts_page([sample("a")], f"c{len(seen) + 1}"))

    with pytest.raises(PaginationError, match=r"paginated \(site s1\): more than 4 pages"):
        await _walk(make_client(endless, ace_max_pages=4))
    assert len(seen) == 4


async def test_pages_are_fetched_lazily(make_client: ClientFactory) -> None:
    """Bounded memory: the next page is requested only when the consumer asks for it."""
    seen, handler = _scripted([ts_page([sample("a")], "c2"), ts_page([sample("b")], None)])
    pages = make_client(handler).iter_timeseries("s1", START_MS, END_MS)
    first = await anext(pages)
    assert (first.number, len(seen)) == (1, 1)
    second = await anext(pages)
    assert (second.number, len(seen)) == (2, 2)
    with pytest.raises(StopAsyncIteration):
        await anext(pages)


async def test_failed_transfer_shrinks_the_page_for_the_next_pages(make_client: ClientFactory) -> None:
    """A 504 on page 2 retries the same cursor at half the page size, and page 3 keeps the smaller size."""
    seen, handler = _scripted(
        [ts_page([], "c2"), httpx.Response(504), ts_page([], "c3"), ts_page([sample("a")], None)]
    )
    pages = await _walk(make_client(handler))
    asked = [(r.url.params.get("cursor"), r.url.params["page_size"]) for r in seen]
    assert asked == [(None, "8000"), ("c2", "8000"), ("c2", "4000"), ("c3", "4000")]
    assert [p.page_size for p in pages] == [8000, 4000, 4000]


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def _cut(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class _CutStream(httpx.AsyncByteStream):
    """A body that stops half way with the connection reset."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"point_samples": [{"na'
        raise httpx.ReadError("connection reset by peer")


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(_timeout, id="timeout"),
        pytest.param(_cut, id="connection"),
        pytest.param(lambda r: httpx.Response(200, stream=_CutStream()), id="cut-body"),
        pytest.param(lambda r: httpx.Response(413), id="413"),
        pytest.param(lambda r: httpx.Response(504), id="504"),
    ],
)
async def test_every_failed_transfer_kind_shrinks(
    make_client: ClientFactory, failure: Callable[[httpx.Request], httpx.Response]
) -> None:
    """Timeouts, broken connections, bodies cut mid-transfer, 413 and 504 each halve the page size."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return failure(request)
        return json_response(ts_page([sample("a")], None))

    await _walk(make_client(handler))
    assert [r.url.params["page_size"] for r in seen] == ["8000", "4000"]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(500), id="500"),
        pytest.param(httpx.Response(502, text="<html>bad gateway</html>"), id="502"),
        pytest.param(httpx.Response(503, headers={"Retry-After": "1"}), id="503"),
        pytest.param(httpx.Response(200, content=b"<html>maintenance</html>"), id="invalid-json"),
        pytest.param(httpx.Response(200, content=b'{"point_samples": [{"na'), id="short-json-full-body"),
        pytest.param(httpx.Response(200, content=b'{"items": []}'), id="invalid-body"),
    ],
)
async def test_failures_unrelated_to_size_do_not_shrink(
    make_client: ClientFactory, failure: httpx.Response
) -> None:
    """500, 502, 503 and complete bodies that are not a page are retried at the same page size."""
    seen, handler = _scripted([failure, ts_page([], None)])
    await _walk(make_client(handler))
    assert [r.url.params["page_size"] for r in seen] == ["8000", "8000"]


async def test_the_page_size_grows_back_after_good_pages(make_client: ClientFactory) -> None:
    """One page failing at 8000 (a 504) halves the size; 4 good pages later it doubles back to 8000."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        number = int(request.url.params.get("cursor", "c1")[1:])
        if number == 3 and request.url.params["page_size"] == "8000":
            return httpx.Response(504)
        return json_response(ts_page([sample("a")], f"c{number + 1}" if number < 12 else None))

    pages = await _walk(make_client(handler, ace_page_grow_after=4))
    assert [p.page_size for p in pages] == [8000, 8000] + [4000] * 4 + [8000] * 6
    assert len(seen) == 13  # one failed attempt, then each page once


async def test_the_page_size_grows_in_steps_up_to_the_configured_size(make_client: ClientFactory) -> None:
    """From the minimum, each run of good pages doubles the size; it never passes ace_page_size."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= 3:
            raise httpx.ReadTimeout("slow", request=request)
        number = len(seen) - 3
        return json_response(ts_page([sample("a")], f"c{number + 1}" if number < 12 else None))

    pages = await _walk(make_client(handler, ace_max_attempts=4, ace_page_grow_after=2))
    assert [p.page_size for p in pages] == [1000, 1000, 2000, 2000, 4000, 4000] + [8000] * 6


async def test_shrink_stops_at_the_minimum(make_client: ClientFactory) -> None:
    """Repeated failures halve down to ace_min_page_size and no lower; exhaustion then fails the window."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(504)

    with pytest.raises(AceRetriesExhausted):
        await _walk(make_client(handler, ace_max_attempts=6))
    assert [r.url.params["page_size"] for r in seen] == ["8000", "4000", "2000", "1000", "1000", "1000"]


async def test_stats_count_calls_pages_retries_and_bytes(make_client: ClientFactory) -> None:
    """stats (global and per site) count HTTP attempts, pages, retries by reason and body bytes."""
    bodies = [ts_page([sample("a")], "c2"), httpx.Response(503), httpx.Response(429), ts_page([], None)]
    _, handler = _scripted(bodies)
    client = make_client(handler)
    await _walk(client)
    expected_bytes = sum(len(json_response(b).content) for b in bodies if not isinstance(b, httpx.Response))
    for stats in (client.stats, client.site_stats("s1")):
        assert (stats.api_calls, stats.pages, stats.bytes) == (4, 2, expected_bytes)
        assert stats.retries == {"server_error": 1, "rate_limited": 1}
    assert client.site_stats("other").api_calls == 0
    frozen = client.stats.snapshot()
    client.stats.retries["timeout"] = 9
    assert frozen.retries == {"server_error": 1, "rate_limited": 1}
