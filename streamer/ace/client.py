"""``AceClient``: the ACE API (``shared/ace-api.md``) as an async httpx client.

The rules live in small pure modules (``retry``, ``pagination``, ``weather``, ``limits``); this class
wires them around one ``httpx.AsyncClient``. Timeseries pages are handed over exactly as decoded
(``pagination.decode_timeseries_page``), one at a time: the hot path does no per-sample work and never
holds a whole window.

The client also keeps the API's clock: the offset of the latest ``Date`` header from the local wall
clock, so the producer can end its windows by the API's now rather than its own (``api_now_ms``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from streamer.ace.http import ACCEPT_ENCODING, BearerAuth, Endpoint, QueryParams, get_json
from streamer.ace.limits import SiteLimits
from streamer.ace.listing import ListingRules, walk_listing
from streamer.ace.pagination import (
    CursorWalk,
    ListPage,
    TimeseriesPage,
    decode_timeseries_page,
    parse_list_page,
)
from streamer.ace.retry import AceTransient, RetryPolicy, retrying
from streamer.ace.transport import AiohttpTransport
from streamer.ace.weather import WeatherSample, parse_weather
from streamer.logs import log_event
from streamer.metrics import API_CLOCK_OFFSET, API_PAGES
from streamer.models import AcePoint, AceSite
from streamer.settings import Settings
from streamer.times import ms_to_iso

__all__ = ["AceClient", "ClientStats", "TimeseriesPage", "WeatherSample"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("streamer.ace")


@dataclass(slots=True)
class ClientStats:
    """Counters of one client (or one site): HTTP attempts, timeseries pages, retries by reason, bytes."""

    api_calls: int = 0
    pages: int = 0
    bytes: int = 0
    retries: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> ClientStats:
        return replace(self, retries=dict(self.retries))

    @property
    def retries_total(self) -> int:
        return sum(self.retries.values())


class AceClient:
    """Async client of the ACE API. Use as ``async with AceClient(settings) as client: ...``.

    ``transport``, ``sleep``, ``rng``, ``clock`` and ``wall_clock`` are injection points for tests:
    every wait (backoff, Retry-After, rate budget) goes through ``sleep``; ``wall_clock`` (epoch
    seconds) is what the API's ``Date`` is compared with.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._wall_clock = wall_clock
        self._api_offset_s: float | None = None
        self._auth = BearerAuth(settings.ace_token_value())
        self._sleep = sleep
        self._rng = rng
        self._policy = RetryPolicy(
            max_attempts=settings.ace_max_attempts,
            base_s=settings.ace_backoff_base_s,
            cap_s=settings.ace_backoff_max_s,
        )
        self._limits = SiteLimits(
            concurrency=settings.ace_max_concurrency,
            rate_per_s=settings.ace_requests_per_s,
            clock=clock,
            sleep=sleep,
        )
        self._http = httpx.AsyncClient(
            base_url=settings.ace_base_url,
            auth=self._auth,
            timeout=httpx.Timeout(settings.ace_timeout_s),
            transport=_wire(settings) if transport is None else transport,
            headers={"accept": "application/json", "accept-encoding": ACCEPT_ENCODING},
        )
        self.stats = ClientStats()
        self._site_stats: dict[str, ClientStats] = {}

    def __repr__(self) -> str:
        return f"AceClient(base_url={self._settings.ace_base_url!r})"

    async def __aenter__(self) -> AceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def site_stats(self, site: str) -> ClientStats:
        """The counters of one site alone (the client is shared by every site's loop)."""
        return self._site_stats.setdefault(site, ClientStats())

    def api_now_ms(self) -> int | None:
        """The API's now by its latest ``Date`` header, in epoch ms; ``None`` before any answer had one.

        ``Date`` has whole seconds and is stamped before the body is sent, so this runs up to about a
        second behind the API: on the safe side for ending windows.
        """
        if self._api_offset_s is None:
            return None
        return round((self._wall_clock() + self._api_offset_s) * 1000)

    # ------------------------------------------------------------------------------------ public API
    async def list_sites(self) -> list[AceSite]:
        """Every site the token sees (collect/archived filtering is the caller's choice)."""
        return await self._list(Endpoint("sites", "/sites/", None), AceSite)

    async def list_points(self, site: str) -> list[AcePoint]:
        """The site's configured points, all pages; unknown fields kept as extras."""
        return await self._list(
            Endpoint("configured_points", f"/sites/{_seg(site)}/configured_points", site), AcePoint
        )

    async def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> AsyncIterator[TimeseriesPage]:
        """The window's raw samples, one page at a time, following the cursor to the end.

        Raises ``PaginationError`` on a repeated cursor or beyond ``ace_max_pages`` pages: the window
        is then incomplete, and the caller must not move its watermark.
        """
        settings = self._settings
        endpoint = Endpoint("timeseries", f"/sites/{_seg(site)}/timeseries/paginated", site)
        walk = CursorWalk(
            max_pages=settings.ace_max_pages,
            page_size=settings.ace_page_size,
            min_page_size=settings.ace_min_page_size,
            grow_after=settings.ace_page_grow_after,
            label=endpoint.describe(),
        )
        start, end = ms_to_iso(start_ms), ms_to_iso(end_ms)

        def params() -> QueryParams:
            query: dict[str, str | int] = {
                "start_time": start,
                "end_time": end,
                "page_size": walk.page_size,
                "raw_data": "true",
            }
            if walk.cursor is not None:
                query["cursor"] = walk.cursor  # opaque: re-sent as is, even with a smaller page size
            return query

        def on_failure(exc: AceTransient) -> None:
            if exc.shrink and walk.shrink():
                log_event(log, logging.INFO, "ace page shrink", site=site, page_size=walk.page_size)

        while not walk.done:
            samples, next_cursor = await self._get(
                endpoint, params, _decoded, on_failure, decode=decode_timeseries_page
            )
            page = TimeseriesPage(walk.number, samples, next_cursor, walk.page_size)
            for stats in self._stats(site):
                stats.pages += 1
            API_PAGES.labels(site=site).inc()
            walk.advance(next_cursor)
            if walk.succeeded():
                log_event(log, logging.INFO, "ace page grow", site=site, page_size=walk.page_size)
            yield page
            del page, samples  # hold one page, not two, while the next one downloads

    async def get_weather(self, site: str) -> list[WeatherSample]:
        """Current weather as ``weather.*`` samples (either API shape). Errors raise as usual."""
        endpoint = Endpoint("weather", f"/sites/{_seg(site)}/weather", site)
        return await self._get(endpoint, {}, parse_weather)

    # ------------------------------------------------------------------------------------ internals
    def _stats(self, site: str | None) -> Iterator[ClientStats]:
        yield self.stats
        if site:
            yield self.site_stats(site)

    async def _get(
        self,
        endpoint: Endpoint,
        params: QueryParams | Callable[[], QueryParams],
        parse: Callable[[Any], T],
        on_failure: Callable[[AceTransient], None] | None = None,
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> T:
        """GET with the site's budget, retries and decoding; ``decode`` and ``parse`` run inside the
        retry loop so a malformed body is retried like a broken transfer. ``params`` may be rebuilt
        per attempt."""

        async def attempt() -> T:
            query = params() if callable(params) else params
            async with self._limits.slot(endpoint.site):
                for stats in self._stats(endpoint.site):
                    stats.api_calls += 1
                answer = await get_json(
                    self._http,
                    endpoint,
                    query,
                    auth=self._auth,
                    timeout_s=self._settings.ace_timeout_s,
                    max_bytes=self._settings.ace_max_response_bytes,
                    decode=decode,
                )
            if answer.date_s is not None:
                self._api_offset_s = answer.date_s - self._wall_clock()
                API_CLOCK_OFFSET.set(self._api_offset_s)
            for stats in self._stats(endpoint.site):
                stats.bytes += answer.size
            return parse(answer.body)

        def on_retry(exc: AceTransient) -> None:
            for stats in self._stats(endpoint.site):
                stats.retries[exc.reason] = stats.retries.get(exc.reason, 0) + 1
            if on_failure is not None:
                on_failure(exc)

        return await retrying(
            attempt,
            policy=self._policy,
            what=endpoint.describe(),
            sleep=self._sleep,
            rng=self._rng,
            on_retry=on_retry,
        )

    async def _list(self, endpoint: Endpoint, model: type[M]) -> list[M]:
        """Walk a paged list envelope, pages 1..pages (the later ones concurrently, within the budget).

        A listing that disagrees with itself is walked again, within the retry policy; when it still
        disagrees the call fails (``AceRetriesExhausted``) rather than return a partial list.
        """
        settings = self._settings
        rules = ListingRules(
            settings.ace_points_page_size, settings.ace_max_list_pages, settings.ace_max_concurrency
        )

        async def one_page(query: QueryParams) -> ListPage:
            return await self._get(endpoint, query, parse_list_page)

        async def walk() -> list[ListPage]:
            return await walk_listing(endpoint, one_page, rules)

        def on_retry(exc: AceTransient) -> None:
            for stats in self._stats(endpoint.site):
                stats.retries[exc.reason] = stats.retries.get(exc.reason, 0) + 1

        pages = await retrying(
            walk,
            policy=self._policy,
            what=endpoint.describe(),
            sleep=self._sleep,
            rng=self._rng,
            on_retry=on_retry,
        )
        return _parse_items(endpoint, pages, model)


def _decoded(page: tuple[list[Any], str | None]) -> tuple[list[Any], str | None]:
    return page


def _wire(settings: Settings) -> AiohttpTransport:
    proxy = settings.ace_proxy_url.get_secret_value() if settings.ace_proxy_url is not None else None
    return AiohttpTransport(settings.ace_timeout_s, proxy=proxy)


def _seg(site: str) -> str:
    """A site name as one URL path segment."""
    return quote(site, safe="")


def _parse_items(endpoint: Endpoint, pages: list[ListPage], model: type[M]) -> list[M]:
    """The listing's items as ``model``; items without a usable name are skipped, and said so."""
    parsed = [_tolerant(model, item) for page in pages for item in page.items]
    items = [item for item in parsed if item is not None]
    if len(items) < len(parsed):
        skipped = len(parsed) - len(items)
        log_event(log, logging.WARNING, "ace list items skipped", call=endpoint.describe(), skipped=skipped)
    return items


def _tolerant(model: type[M], item: Any) -> M | None:
    """Validate an item; a malformed optional field falls back to its default instead of losing the
    item. ``None`` only when the item has no usable ``name``."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        bad.discard("name")
        try:
            return model.model_validate({k: v for k, v in item.items() if k not in bad})
        except ValidationError:
            return None
