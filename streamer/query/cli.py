"""``streamer api``, ``streamer query``, ``streamer status``, ``streamer gaps``.

With a ClickHouse server the commands read it directly (read-only); with the embedded engine they ask
the HTTP API of the process that owns it (see ``streamer.query.backend``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from streamer.query import render
from streamer.query.backend import Backend, make_backend
from streamer.query.params import (
    GAP_TOLERANCE,
    RESOLUTIONS,
    TIME_HELP,
    parse_points,
    parse_range,
    parse_site,
)
from streamer.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _run(settings: Settings, call: Callable[[Backend], Awaitable[T]]) -> T:
    async def main() -> T:
        backend = make_backend(settings)
        try:
            return await call(backend)
        finally:
            await backend.aclose()

    return asyncio.run(main())


def _echo(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.option("--host", help="Listen address (default STREAMER_API_HOST).")
@click.option("--port", type=int, help="Listen port (default STREAMER_API_PORT).")
@click.pass_obj
def api(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the query API and status page stand-alone."""
    updates: dict[str, Any] = {}
    if host:
        updates["api_host"] = host
    if port:
        updates["api_port"] = port
    settings = settings.model_copy(update=updates)
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from aiohttp import web

    from streamer.query.api import build_app, check_access
    from streamer.query.service import QueryService
    from streamer.sink.client import require_embedded_engine

    check_access(settings, settings.api_host)
    require_embedded_engine(settings)  # ClickHouse is opened lazily: say now what is missing
    app = build_app(settings, QueryService(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.api_host, settings.api_port)
        try:
            await site.start()
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {settings.api_host}:{settings.api_port}: {exc.strerror} "
                "(set STREAMER_API_PORT or --port)"
            ) from exc
        log.info(
            "query API on http://%s:%d/ (ClickHouse: %s)",
            settings.api_host,
            settings.api_port,
            "embedded" if settings.is_embedded_clickhouse else "server",
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)


@click.command()
@click.option("--site", required=True, help="Site name.")
@click.option("--points", required=True, help="Comma-separated point names.")
@click.option("--start", help=f"Start (inclusive): {TIME_HELP}. Default: a day before end.")
@click.option("--end", help=f"End (exclusive): {TIME_HELP}. Default: now.")
@click.option("--resolution", type=click.Choice(RESOLUTIONS), default="auto", show_default=True)
@_FORMAT
@click.pass_obj
def query(
    settings: Settings, site: str, points: str, start: str | None, end: str | None, resolution: str, fmt: str
) -> None:
    """Samples of chosen points over a time range."""
    from streamer.times import now_ms

    names = parse_points([points], required=True)
    time_range = parse_range(start, end, now_ms())
    for warning in time_range.warnings:
        click.echo(f"warning: {warning}", err=True)
    answer = _run(settings, lambda b: b.samples(parse_site(site), names, time_range, resolution))
    if fmt == "json":
        _echo(render.as_json(answer))
    elif fmt == "csv":
        _echo(render.samples_csv(answer))
    else:
        Console().print(render.samples_table(answer))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def status(settings: Settings, fmt: str) -> None:
    """Per site last sync, watermark age, last error; consumer lag; DLQ depth; rows in ClickHouse."""
    answer = _run(settings, lambda b: b.status())
    if fmt == "json":
        _echo(render.as_json(answer))
    else:
        Console().print(render.status_view(answer))


@click.command()
@click.option("--site", required=True, help="Site name.")
@click.option("--start", help=f"Start: {TIME_HELP}. Default: a day before end.")
@click.option("--end", help=f"End: {TIME_HELP}. Default: now; judging stops at the site's watermark.")
@click.option(
    "--tolerance",
    type=click.FloatRange(1.0, 1000.0),
    default=GAP_TOLERANCE,
    show_default=True,
    help="Collect intervals that may pass between two samples before it is a gap (2.5: one rejected "
    "sample is no gap, two missing in a row are).",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=render.GAPS_LIMIT,
    show_default=True,
    help="Points listed in the table, most samples missing first (--format json holds all).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def gaps(
    settings: Settings, site: str, start: str | None, end: str | None, tolerance: float, limit: int, fmt: str
) -> None:
    """Summary of the points whose samples miss their collect interval, then the worst points."""
    from streamer.times import now_ms

    time_range = parse_range(start, end, now_ms())
    for warning in time_range.warnings:
        click.echo(f"warning: {warning}", err=True)
    answer = _run(settings, lambda b: b.gaps(parse_site(site), time_range, tolerance))
    if fmt == "json":
        _echo(render.as_json(answer))
    else:
        Console().print(render.gaps_view(answer, limit))
