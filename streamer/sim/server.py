"""The simulator's HTTP server: the ACE API endpoints, served under ``/api`` and at the root.

Every API request is checked in the order the real service would: bearer token, site known, site
allowed for the token, then the configured faults; only then is the body built. Admin endpoints
(``/_sim/...``, see ``admin.py``) skip auth and faults.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from streamer.logs import log_event
from streamer.sim.admin import add_admin_routes
from streamer.sim.catalog import catalog_of
from streamer.sim.config import Gap, Order, SimConfig
from streamer.sim.faults import FaultInjector, FaultKind
from streamer.sim.model import enabled_mask
from streamer.sim.pages import Cursor, decode_cursor, page_body
from streamer.sim.render import paged_body
from streamer.sim.vendor import collect_enabled_value, site_item
from streamer.sim.weather import weather_body
from streamer.times import to_ms

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIXES = ("", "/api")
DEFAULT_PAGE_SIZE = 10_000
MAX_PAGE_SIZE = 500_000
_PAGE_CACHE = 6
_JSON = "application/json"


@dataclass(frozen=True)
class Mode:
    """How samples travel; switchable while the server runs."""

    order: Order
    repeat: int
    empty_every: int


class SimState:
    """What a running simulator knows beyond its config: mode, faults, point switches, counters."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.mode = Mode(config.order, config.repeat, config.empty_every)
        self.faults = FaultInjector(config.faults)
        self.overrides: dict[str, dict[str, bool]] = {site: {} for site in config.sites}
        self.stats: Counter[str] = Counter()
        self.fixed_now_ms: int | None = None  # the simulator's clock, when set (``/_sim/clock``)
        self.live = False  # serve only samples whose time has come by the clock (``sim serve --live``)
        self._pages: OrderedDict[tuple[Any, ...], tuple[bytearray, int]] = OrderedDict()
        self._points: dict[str, list[dict[str, Any]]] = {}

    def set_mode(self, changes: dict[str, Any]) -> Mode:
        mode = replace(self.mode, **changes)
        replace(self.config, order=mode.order, repeat=mode.repeat, empty_every=mode.empty_every)  # validates
        self.mode = mode
        return mode

    def now_ms(self) -> int:
        """The simulator's clock: the set instant, else the system's. Late samples arrive by it."""
        return self.fixed_now_ms if self.fixed_now_ms is not None else time.time_ns() // 1_000_000

    def set_enabled(self, site: str, names: list[str], enabled: bool) -> None:
        self.overrides[site].update(dict.fromkeys(names, enabled))
        self._points.pop(site, None)

    def point_items(self, site: str) -> list[dict[str, Any]]:
        """configured_points items of ``site`` with their current ``collect_enabled`` (null on the
        catalog's share of collected points: a null is collected)."""
        items = self._points.get(site)
        if items is None:
            cat = catalog_of(self.config, site)
            enabled = enabled_mask(cat, self.overrides[site]).tolist()
            nulls = cat.null_enabled.tolist()
            items = [
                {**cat.items[j], "collect_enabled": collect_enabled_value(enabled[j], nulls[j])}
                for j in range(cat.size)
                if cat.configured[j]
            ]
            self._points[site] = items
        return items

    def page(self, cursor: Cursor, page_size: int) -> bytearray:
        """A timeseries page body; the last few are cached because retries ask for them again."""
        mode = self.mode
        now_ms = self.now_ms()
        hidden = self.faults.config.hidden(cursor.site, now_ms)
        if self.live and cursor.end_ms > now_ms + 1:
            # The future as a hidden span: positions in the window's order stay where they were, so
            # a walk's pages still join up while samples appear.
            hidden = (*hidden, Gap(cursor.site, None, now_ms + 1, cursor.end_ms))
        key = (cursor, page_size, mode.repeat, mode.empty_every, hidden)
        hit = self._pages.get(key)
        if hit is None:
            hit = page_body(self.config, cursor, page_size, mode.repeat, mode.empty_every, hidden)
            self._pages[key] = hit
            if len(self._pages) > _PAGE_CACHE:
                self._pages.popitem(last=False)
        self.stats["pages"] += 1
        self.stats["samples"] += hit[1]
        return hit[0]


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"detail": detail})
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def _bad_request(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=orjson.dumps({"detail": detail}).decode(), content_type=_JSON)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad_request(f"{name} must be between {low} and {high}")
    return value


class SimApi:
    """The API handlers over one ``SimState``."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Token, then site, before any handler of the API reads its parameters."""
        if "/_sim/" not in request.path:
            # Counted per endpoint (prefix and site left out), whatever the answer: what a client costs.
            route = request.match_info.route.resource
            name = route.canonical.removeprefix("/api") if route is not None else request.path
            self.state.stats[f"requests {name}"] += 1
            denial = self._deny(request, request.match_info.get("site"))
            if denial is not None:
                return denial
        return await handler(request)

    def _deny(self, request: web.Request, site: str | None) -> web.Response | None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        token = self.state.config.token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            self.state.stats["unauthorized"] += 1
            return _error(401, "Invalid or expired token")
        if site is None:
            return None
        if site not in self.state.overrides:
            return _error(404, f"site {site!r} not found")
        if site in self.state.faults.config.unauthorized_sites:
            self.state.faults.counts[FaultKind.UNAUTHORIZED.value] += 1
            return _error(401, "Invalid or expired token")
        return None

    async def _serve(
        self,
        request: web.Request,
        produce: Callable[[], bytes | bytearray],
        page_size: int | None = None,
        short: Callable[[], bytes] | None = None,
    ) -> web.StreamResponse:
        """Answer with ``produce()`` unless a fault says otherwise; ``short`` builds the short
        version of a listing page."""
        path = request.path.removeprefix("/api")
        query = sorted(f"{k}={v}" for k, v in request.query.items() if k != "page_size")
        key = f"{request.method} {path}?{'&'.join(query)}"
        fate = self.state.faults.decide(key, page_size=page_size, listing=short is not None)
        if fate.delay_s:
            await asyncio.sleep(fate.delay_s)
        if fate.failure is FaultKind.SERVER_ERROR:
            if fate.status == 500:
                return _error(500, "Internal Server Error")
            # What a gateway in front of the API sends: HTML, not JSON.
            html = f"<html><body><h1>{fate.status} {HTTPStatus(fate.status).phrase}</h1></body></html>"
            return web.Response(status=fate.status, text=html, content_type="text/html")
        if fate.failure is FaultKind.RATE_LIMITED:
            return _error(429, "Too Many Requests", {"Retry-After": fate.retry_after or "1"})
        if fate.failure is FaultKind.SHORT_PAGE and short is not None:
            return web.Response(body=short(), content_type=_JSON)
        body = produce()
        if fate.failure is FaultKind.TRANSFER_LIMIT:
            return await _cut_transfer(request, body)
        if fate.failure is FaultKind.TRUNCATED:
            body = body[: len(body) // 2]
        return web.Response(body=body, content_type=_JSON)

    async def sites(self, request: web.Request) -> web.StreamResponse:
        page = _int_param(request, "page", 1, 1, 1_000_000)
        per_page = _int_param(request, "per_page", 100, 1, 10_000)
        config = self.state.config
        items = [site_item(config.seed, s, i) for i, s in enumerate(config.sites)]
        return await self._serve(request, lambda: paged_body(items, page, per_page))

    async def points(self, request: web.Request) -> web.StreamResponse:
        site = request.match_info["site"]
        page = _int_param(request, "page", 1, 1, 1_000_000)
        per_page = _int_param(request, "per_page", 100, 1, 10_000)

        def produce() -> bytes:
            # Sites at odd positions say total_items, as some deployments do.
            total_key = ("total", "total_items")[self.state.config.sites.index(site) % 2]
            return paged_body(self.state.point_items(site), page, per_page, total_key)

        def short() -> bytes:
            return _shortened(produce())

        return await self._serve(request, produce, short=short)

    async def timeseries(self, request: web.Request) -> web.StreamResponse:
        site = request.match_info["site"]
        page_size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        if request.query.get("raw_data", "true").lower() == "false":
            raise _bad_request("raw_data=false (5-minute buckets) is not simulated")
        cursor = self._cursor(request, site)
        return await self._serve(request, lambda: self.state.page(cursor, page_size), page_size)

    def _cursor(self, request: web.Request, site: str) -> Cursor:
        text = request.query.get("cursor")
        if text:
            try:
                cursor = decode_cursor(text)
            except ValueError:
                raise _bad_request("invalid cursor") from None
            if cursor.site != site:
                raise _bad_request("cursor belongs to another site")
            return cursor
        try:
            start_ms = to_ms(request.query["start_time"])
            end_ms = to_ms(request.query["end_time"])
        except KeyError:
            raise _bad_request("start_time and end_time are required") from None
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return Cursor(site, start_ms, end_ms, self.state.mode.order)

    async def weather(self, request: web.Request) -> web.StreamResponse:
        site = request.match_info["site"]
        now_ms = self.state.now_ms()
        config = self.state.config
        return await self._serve(request, lambda: orjson.dumps(weather_body(config, site, now_ms)))


def _shortened(body: bytes) -> bytes:
    """A listing page that lost the second half of its items, its envelope unchanged (what a listing
    shifting under a paging cursor, or a lossy gateway, looks like)."""
    envelope = orjson.loads(body)
    items = envelope["items"]
    envelope["items"] = items[: len(items) // 2]
    return orjson.dumps(envelope)


async def _cut_transfer(request: web.Request, body: bytes | bytearray) -> web.StreamResponse:
    """Announce the whole body, send half of it, and drop the connection: a transfer that failed."""
    response = web.StreamResponse(headers={"Content-Type": _JSON})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(bytes(body[: len(body) // 2]))
    if request.transport is not None:
        request.transport.close()
    return response


def build_app(state: SimState) -> web.Application:
    """The aiohttp application: API routes under both prefixes, plus the admin routes."""
    api = SimApi(state)
    app = web.Application(middlewares=[api.guard])
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/sites/", api.sites)
        app.router.add_get(f"{prefix}/sites", api.sites)
        app.router.add_get(f"{prefix}/sites/{{site}}/configured_points", api.points)
        app.router.add_get(f"{prefix}/sites/{{site}}/timeseries/paginated", api.timeseries)
        app.router.add_get(f"{prefix}/sites/{{site}}/weather", api.weather)
        add_admin_routes(app, state, prefix)
    return app


class SimServer:
    """A simulator listening on ``host:port`` (port 0 picks a free one) inside the running loop."""

    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = SimState(config)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, shaped like the real one (``.../api``)."""
        return f"{self.root_url}/api"

    async def start(self) -> str:
        self._runner = web.AppRunner(build_app(self.state), access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log_event(log, logging.INFO, "simulator listening", url=self.url, sites=len(self.state.config.sites))
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@asynccontextmanager
async def run_simulator(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``config`` in this event loop for the duration of the block; yields the API base URL."""
    server = SimServer(config or SimConfig(), host, port)
    await server.start()
    try:
        yield server.url
    finally:
        await server.close()
