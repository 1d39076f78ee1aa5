"""The HTTP API (aiohttp): routes under /api/v1, /health, /metrics, and the status page at /.

``build_app`` makes a stand-alone application; ``mount`` adds the same routes to an existing one
(the processor's faust web server, whose ``faust_app.web.web_app`` is an aiohttp Application).
Every handler is wrapped so that errors become JSON ``{"error", "status"}`` with the status the
caller can act on: 4xx for what the caller must change, 503 while ClickHouse is unavailable, 500
(logged) only for a bug. Access (``streamer.webguard``, installed on the whole application): bound to a
non-loopback address the API refuses to start without ``api_token``; foreign Hosts and Origins and
non-JSON POSTs are refused; with a token, every route but the page, its files, the OpenAPI document and
``/health`` (which then shows only ok/degraded/down) wants ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.errors import QueryError, SchemaError, StreamerError, TransientError
from streamer.metrics import DLQ_DEPTH
from streamer.package_data import STATIC, VENDOR, on_disk
from streamer.query import params as p
from streamer.query.openapi import openapi_document
from streamer.query.service import QueryService
from streamer.settings import Settings
from streamer.times import now_ms
from streamer.webguard import AUTHENTICATED, Policy, check_bind, install, is_loopback

__all__ = ["build_app", "check_access", "is_loopback", "mount"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DLQ_DEPTH_WAIT_S: Final = 2.0
SERVICE_KEY: Final = web.AppKey("streamer_query_service", QueryService)


def check_access(settings: Settings, bind_host: str, setting: str = "STREAMER_API_HOST") -> None:
    """Refuse to serve data beyond this machine without a token."""
    check_bind(settings, bind_host, setting)


def json_response(payload: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json")


def _warned(answer: dict[str, Any], time_range: p.TimeRange) -> dict[str, Any]:
    """The answer with the range's warnings (e.g. epoch seconds sent as ms), when there are any."""
    return {**answer, "warnings": list(time_range.warnings)} if time_range.warnings else answer


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message, "status": status}, status=status)


def csv_response(columns: list[str], rows: list[list[Any]], filename: str) -> web.Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    response = web.Response(text=buffer.getvalue(), content_type="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _guard(handler: Handler) -> Handler:
    """The error policy (access is the application's middleware): what the caller must change is
    4xx, an outage 503."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except QueryError as exc:
            return error_response(exc.status, str(exc))
        except (TransientError, SchemaError) as exc:
            return error_response(503, f"{type(exc).__name__}: {exc}")
        except StreamerError as exc:
            log.warning("query failed: %s", exc)
            return error_response(503, f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(500, "internal error (logged on the server)")

    return guarded


class Routes:
    """The handlers; each reads its parameters, asks the service, and shapes the answer."""

    def __init__(self, settings: Settings, service: QueryService) -> None:
        self.settings = settings
        self.service = service

    async def sites(self, request: web.Request) -> web.StreamResponse:
        return json_response(await self.service.sites())

    async def points(self, request: web.Request) -> web.StreamResponse:
        site = p.parse_site(request.match_info["site"])
        query = request.rel_url.query
        tags = p.parse_marker_tags(query.getall("tag", []))
        kv = p.parse_kv_tags(query.getall("kv", []))
        return json_response(await self.service.points(site, tags, kv))

    async def samples(self, request: web.Request) -> web.StreamResponse:
        site = p.parse_site(request.match_info["site"])
        query = request.rel_url.query
        points = p.parse_points(query.getall("points", []), required=True)
        time_range = p.parse_range(query.get("start"), query.get("end"), now_ms())
        resolution = p.parse_resolution(query.get("resolution"))
        fmt = p.parse_format(query.get("format"))
        answer = _warned(await self.service.samples(site, points, time_range, resolution), time_range)
        if fmt == "csv":
            columns = answer["columns"]
            rows = [[row[c] for c in columns] for row in answer["rows"]]
            return csv_response(columns, rows, f"{site}-samples.csv")
        return json_response(answer)

    async def latest(self, request: web.Request) -> web.StreamResponse:
        site = p.parse_site(request.match_info["site"])
        points = p.parse_points(request.rel_url.query.getall("points", []), required=False)
        return json_response(await self.service.latest(site, points))

    async def gaps(self, request: web.Request) -> web.StreamResponse:
        site = p.parse_site(request.match_info["site"])
        query = request.rel_url.query
        time_range = p.parse_range(query.get("start"), query.get("end"), now_ms())
        tolerance = p.parse_tolerance(query.get("tolerance"))
        return json_response(_warned(await self.service.gaps(site, time_range, tolerance), time_range))

    async def completeness(self, request: web.Request) -> web.StreamResponse:
        site = p.parse_site(request.match_info["site"])
        query = request.rel_url.query
        time_range = p.parse_range(query.get("start"), query.get("end"), now_ms())
        return json_response(_warned(await self.service.completeness(site, time_range), time_range))

    async def sql(self, request: web.Request) -> web.StreamResponse:
        fmt = p.parse_format(request.rel_url.query.get("format"))
        text = await _sql_text(request)
        answer = await self.service.run_sql(text)
        # Up to STREAMER_API_SQL_MAX_RESULT_BYTES to copy or convert: off the event loop.
        if fmt == "csv":
            response = web.Response(body=await self.service.offload(answer.csv_body), content_type="text/csv")
            response.headers["Content-Disposition"] = 'attachment; filename="query.csv"'
            return response
        return web.Response(
            body=await self.service.offload(answer.json_body), content_type="application/json"
        )

    async def status(self, request: web.Request) -> web.StreamResponse:
        return json_response(await self.service.status())

    async def health(self, request: web.Request) -> web.StreamResponse:
        """Anonymous callers get ok/degraded/down only: the details name hosts, paths and errors."""
        answer = await self.service.health()
        status = 200 if answer["clickhouse"]["reachable"] else 503
        if not request.get(AUTHENTICATED, False):
            answer = {"status": answer["status"]}
        return json_response(answer, status=status)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        # The DLQ's depth is Kafka's to tell: read (cached, like the status page's) when scraped, never
        # holding the scrape up for long when Kafka does not answer.
        with contextlib.suppress(TimeoutError):
            depth = (await asyncio.wait_for(self.service.kafka.snapshot(), DLQ_DEPTH_WAIT_S)).get("dlq_depth")
            if depth is not None:
                DLQ_DEPTH.set(depth)
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return json_response(openapi_document(self.settings))

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(on_disk(STATIC) / "index.html")


async def _sql_text(request: web.Request) -> str:
    """The statement, from a JSON body ``{"sql": "..."}`` (the guard refuses any other content type:
    a browser cannot send JSON cross-origin without a preflight this API never grants)."""
    body = await request.read()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise QueryError('the body is not JSON: send {"sql": "SELECT ..."}') from None
    if not isinstance(payload, dict) or not isinstance(payload.get("sql"), str):
        raise QueryError('send {"sql": "SELECT ..."} (a JSON object with a string "sql")')
    return str(payload["sql"])


def route_table(settings: Settings, service: QueryService) -> list[tuple[str, str, Handler, bool]]:
    """``(method, path, handler, public)`` of every route."""
    r = Routes(settings, service)
    return [
        ("GET", "/api/v1/sites", r.sites, False),
        ("GET", "/api/v1/sites/{site}/points", r.points, False),
        ("GET", "/api/v1/sites/{site}/samples", r.samples, False),
        ("GET", "/api/v1/sites/{site}/latest", r.latest, False),
        ("GET", "/api/v1/sites/{site}/gaps", r.gaps, False),
        ("GET", "/api/v1/sites/{site}/completeness", r.completeness, False),
        ("POST", "/api/v1/sql", r.sql, False),
        ("GET", "/api/v1/status", r.status, False),
        ("GET", "/api/v1/openapi.json", r.openapi, True),
        ("GET", "/health", r.health, True),
        ("GET", "/metrics", r.metrics, False),
        ("GET", "/ui/", r.page, True),
    ]


def mount(
    web_app: web.Application,
    settings: Settings,
    query_service: QueryService,
    bind_host: str | None = None,
    setting: str = "STREAMER_API_HOST",
) -> None:
    """Add the API, the page (at / when free, always at /ui/) and its static files to ``web_app``, and
    guard every route of ``web_app`` (its own too) with ``streamer.webguard``.

    ``bind_host`` is the address the server listens on (default ``settings.api_host``; ``setting``
    names it); a non-loopback one without ``api_token`` raises ``ConfigError``. In the processor,
    call it from ``App.on_webserver_init(web)`` with ``web.web_app``: faust's own blueprints (its
    index at /) are in place by then and routes and middlewares can still be added.
    """
    bind = bind_host if bind_host is not None else settings.api_host
    check_access(settings, bind, setting)
    web_app[SERVICE_KEY] = query_service
    router = web_app.router
    public: set[str] = set()  # the page, its files, the OpenAPI document and /health
    for method, path, handler, is_public in route_table(settings, query_service):
        router.add_route(method, path, _guard(handler))
        if is_public:
            public.add(path)
    if any(resource.canonical == "/" for resource in router.resources()):
        # aiohttp would add a second resource for / that is never reached: the host's stays, guarded
        log.info("/ is taken by the host application: the status page is at /ui/")
    else:
        router.add_route("GET", "/", _guard(Routes(settings, query_service).page))
        public.add("/")
    # first: a package imported from a zip extracts each folder on its own (on_disk)
    router.add_static("/static/vendor/", on_disk(VENDOR))
    router.add_static("/static/", on_disk(STATIC))
    install(web_app, Policy.of(settings, bind, frozenset(public), ("/static/",)))


@web.middleware
async def _last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and methods answer JSON too; anything that escaped a handler is a logged 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return error_response(exc.status, exc.reason)
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "internal error (logged on the server)")


def build_app(settings: Settings, query_service: QueryService) -> web.Application:
    """A stand-alone application serving the API; the service is closed with the app."""
    app = web.Application(middlewares=[_last_resort], client_max_size=1_048_576)
    mount(app, settings, query_service)

    async def close_service(_: web.Application) -> None:
        await query_service.close()

    app.on_cleanup.append(close_service)
    return app
