"""``streamer producer``, ``streamer backfill`` and ``streamer topics``."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from streamer.ace.client import AceClient
from streamer.cli import TIME
from streamer.errors import StreamerError
from streamer.kafka import ensure_topics
from streamer.models import SyncRun
from streamer.producer.context import Clock, fixed_clock, system_clock
from streamer.producer.repair import repair_loop
from streamer.producer.reset import reset_site
from streamer.producer.runner import backfill as run_backfill
from streamer.producer.runner import open_producer, run_forever, run_owned_cycle
from streamer.producer.shard import SiteShard
from streamer.producer.windows import Window, window_count
from streamer.runtime import tune_gc
from streamer.settings import Settings
from streamer.times import ms_to_iso

_NOW_HELP = "Fix the clock (ISO 8601 or epoch ms): for tests and reproducible runs."


def _clock(now: int | None) -> Clock:
    return system_clock if now is None else fixed_clock(now)


@click.command()
@click.option(
    "--once", is_flag=True, help="One cycle over every site, then exit (non-zero if a site failed)."
)
@click.option("--now", type=TIME, default=None, help=_NOW_HELP)
@click.option(
    "--reset-site",
    "reset",
    metavar="SITE",
    default=None,
    help="Write a fresh sync state for SITE (its ace.sync record is unreadable) and exit; needs --from.",
)
@click.option("--from", "from_ms", type=TIME, default=None, help="With --reset-site: where the site resumes.")
@click.option("--force", is_flag=True, help="With --reset-site: also replace a readable sync state.")
@click.pass_obj
def producer(
    settings: Settings,
    once: bool,
    now: int | None,
    reset: str | None,
    from_ms: int | None,
    force: bool,
) -> None:
    """Poll the ACE API for every site and publish to Kafka, every poll_interval_s.

    Serves Prometheus metrics on producer_metrics_host:producer_metrics_port (0: off) while it runs.
    A site whose ace.sync record cannot be decoded fails every cycle until --reset-site SITE --from TIME.
    """
    if reset is not None or from_ms is not None:
        _reset(settings, reset, from_ms, force, _clock(now)())
        return
    if settings.producer_metrics_port and not once:
        from streamer.producer.metrics_http import serve_metrics  # aiohttp: 0.35 s a backfill never needs

        try:
            serve_metrics(settings)
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve metrics on {settings.producer_metrics_host}:{settings.producer_metrics_port} "
                f"(STREAMER_PRODUCER_METRICS_PORT): {exc.strerror}"
            ) from exc
    tune_gc()
    failures = asyncio.run(_produce(settings, once, _clock(now)))
    for site, error in failures:
        click.echo(f"streamer producer: site {site} failed: {error}", err=True)
    if failures:
        sys.exit(1)


def _reset(settings: Settings, site: str | None, from_ms: int | None, force: bool, now_ms: int) -> None:
    if site is None or from_ms is None:
        raise click.UsageError("--reset-site and --from go together")
    try:
        state = asyncio.run(reset_site(settings, site, from_ms, now_ms, force=force))
    except StreamerError as exc:
        raise click.ClickException(f"site {site} not reset: {exc}") from exc
    click.echo(f"site {site} reset: its next window starts at {ms_to_iso(state.watermark_ms)}")


async def _produce(settings: Settings, once: bool, clock: Clock) -> list[tuple[str, str]]:
    async with (
        AceClient(settings) as client,
        open_producer(settings, client, clock=clock) as ctx,
        repair_loop(ctx),
    ):
        shard = None
        if settings.producer_group:
            shard = SiteShard(settings, ctx.partitions[settings.topic_sync])
            await shard.start()
            shard.take_gained()  # open_producer has just read every site's state: no second read
        try:
            if once:
                outcomes = await run_owned_cycle(ctx, shard=shard)
                return [(o.site, o.error or "failed") for o in outcomes if not o.ok]
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_forever(ctx, stop, shard)
        finally:
            if shard is not None:
                await shard.stop()
        return []


@click.command()
@click.option("--site", required=True, help="The site to backfill.")
@click.option("--start", "start_ms", type=TIME, required=True, help="Range start (ISO 8601 or epoch ms).")
@click.option(
    "--end", "end_ms", type=TIME, required=True, help="Range end, exclusive (ISO 8601 or epoch ms)."
)
@click.option("--now", type=TIME, default=None, help=_NOW_HELP)
@click.pass_obj
def backfill(settings: Settings, site: str, start_ms: int, end_ms: int, now: int | None) -> None:
    """Publish a site's samples of [start, end) in windows of max_window_s, with progress."""
    if end_ms <= start_ms:
        raise click.BadParameter("--end must be after --start")
    total = window_count(start_ms, end_ms, settings)
    started = time.monotonic()
    progress = _BackfillProgress(site, total)
    try:
        tune_gc()
        asyncio.run(_backfill(settings, site, start_ms, end_ms, progress, _clock(now)))
    except StreamerError as exc:
        resume = ms_to_iso(progress.resume_ms or start_ms)
        click.echo(
            f"streamer backfill: site {site} failed after {progress.windows} of {total} windows: "
            f"{type(exc).__name__}: {exc} (resume with --start {resume})",
            err=True,
        )
        sys.exit(1)
    elapsed = time.monotonic() - started
    click.echo(
        f"backfill {site}: {progress.windows} windows, {progress.samples} samples in {elapsed:.1f} s"
        f" ({progress.samples / max(elapsed, 1e-9):,.0f} samples/s)"
    )


class _BackfillProgress:
    """A rich progress bar on stderr: windows done of total, samples, rate, ETA."""

    def __init__(self, site: str, total: int) -> None:
        self.windows = self.samples = 0
        self.resume_ms: int | None = None
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("windows {task.fields[samples]:>12,} samples {task.fields[rate]:>9,.0f}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.bar = Progress(*columns, console=Console(stderr=True))
        # the column renders markup: a site name is data, never markup
        self._task = self.bar.add_task(f"backfill {escape(site)}", total=total, samples=0, rate=0.0)
        self._started = time.monotonic()

    def on_window(self, window: Window, run: SyncRun) -> None:
        self.windows += 1
        self.samples += run.samples_published
        self.resume_ms = window.end_ms
        rate = self.samples / max(time.monotonic() - self._started, 1e-9)
        self.bar.update(self._task, advance=1, samples=self.samples, rate=rate)


async def _backfill(
    settings: Settings, site: str, start_ms: int, end_ms: int, progress: _BackfillProgress, clock: Clock
) -> None:
    with progress.bar:
        async with AceClient(settings) as client, open_producer(settings, client, clock=clock) as ctx:
            await run_backfill(ctx, site, start_ms, end_ms, progress.on_window)


@click.command()
@click.pass_obj
def topics(settings: Settings) -> None:
    """Create the missing Kafka topics with their policies."""
    created = asyncio.run(ensure_topics(settings))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")
