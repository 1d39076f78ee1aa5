"""``streamer processor`` (run a worker) and ``streamer dlq list|replay``."""

from __future__ import annotations

import asyncio
import logging
import sys

import click
import faust

from streamer.kafka import ensure_topics
from streamer.processor import dlq_tools
from streamer.processor.app import create_app
from streamer.runtime import shorten_gil_switch, tune_gc
from streamer.settings import Settings

log = logging.getLogger(__name__)


@click.command()
@click.pass_obj
def processor(settings: Settings) -> None:
    """Run a processor worker: ace.samples and ace.sync_runs into ClickHouse.

    Refuses to start when the ClickHouse schema lacks a migration (run `streamer migrate`). Run as
    many workers as wanted with the same processor_app_id: they split the partitions.
    """
    from streamer.sink.writer import Sink

    sink = Sink(settings)
    sink.check_schema()  # SchemaError names the missing migration: one line, exit 1
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    if settings.log_level != "debug":
        # faust and mode narrate every service start and stop at INFO: keep our own lines readable.
        for noisy in ("faust", "mode"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    processor_app = create_app(settings, sink_factory=lambda: sink)
    worker = faust.Worker(
        processor_app.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.spinner = None  # a terminal spinner writes escape codes to stdout, also when not a tty
    tune_gc()
    shorten_gil_switch()
    worker.execute_from_commandline()


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue."""


@dlq.command("list")
@click.option("--examples", default=3, show_default=True, help="Examples shown per error class.")
@click.pass_obj
def list_(settings: Settings, examples: int) -> None:
    """Summarise the DLQ: counts by error class and stage, oldest/newest, a few examples."""
    entries = asyncio.run(dlq_tools.read_dlq(settings))
    summary = dlq_tools.summarise(entries, examples=examples)
    for line in dlq_tools.format_summary(summary, settings.topic_dlq):
        click.echo(line)


@dlq.command()
@click.option("--error-class", default=None, help="Only dead letters of this error class.")
@click.option("--since", default=None, help="Only dead letters written at or after (ISO 8601 or epoch ms).")
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; publish nothing.")
@click.pass_obj
def replay(settings: Settings, error_class: str | None, since: str | None, dry_run: bool) -> None:
    """Republish matching dead letters to their source topic (header replayed_from)."""
    try:
        since_ms = dlq_tools.parse_since(since) if since else None
    except ValueError:
        raise click.BadParameter(
            f"{since!r} is neither ISO 8601 nor epoch ms", param_hint="--since"
        ) from None

    async def run() -> tuple[int, int]:
        entries = dlq_tools.select(await dlq_tools.read_dlq(settings), error_class, since_ms)
        if dry_run:
            return len(entries), 0
        return len(entries), await dlq_tools.replay(settings, entries)

    matched, replayed = asyncio.run(run())
    verb = "would replay" if dry_run else "replayed"
    click.echo(f"{verb} {matched if dry_run else replayed} of {matched} matching dead letters")
    sys.stdout.flush()
