"""The producer's /metrics listener: prometheus_client's registry behind the listeners' one policy
(``streamer.webguard``: Host, Origin, token), on its own event loop in a daemon thread so a busy
producer loop never stalls a scrape. ``/health`` answers ``{"status": "ok"}`` to anyone (a liveness
probe needs no token)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.settings import Settings
from streamer.webguard import Handler, Policy, check_bind, error_response, install

HOST_SETTING = "STREAMER_PRODUCER_METRICS_HOST"


def metrics_app(settings: Settings) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return error_response(exc.status, exc.reason)

    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    install(app, Policy.of(settings, settings.producer_metrics_host, frozenset({"/health"})))
    return app


def serve_metrics(settings: Settings) -> None:
    """Listen on producer_metrics_host:producer_metrics_port until the process ends; ``OSError`` when
    the address is taken, ``ConfigError`` for a non-loopback bind without a token."""
    check_bind(settings, settings.producer_metrics_host, HOST_SETTING)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(metrics_app(settings), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, settings.producer_metrics_host, settings.producer_metrics_port)
    try:
        loop.run_until_complete(site.start())
    except OSError:
        loop.run_until_complete(runner.cleanup())
        loop.close()
        raise
    threading.Thread(target=loop.run_forever, name="producer-metrics", daemon=True).start()
