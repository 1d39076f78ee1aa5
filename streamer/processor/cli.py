"""``streamer processor``: run a worker."""

from __future__ import annotations

import asyncio
import logging

import click

from streamer.kafka import ensure_topics, resolve_replication
from streamer.processor import faust_seam
from streamer.processor.app import create_app
from streamer.runtime import (
    ENGINE_LIBRARY,
    release_library_pages,
    shorten_gil_switch,
    tune_engine_malloc,
    tune_gc,
    tune_malloc,
    without_modules,
)
from streamer.settings import Settings

log = logging.getLogger(__name__)
UNUSED_MODULES = ("pyarrow",)


@click.command()
@click.pass_obj
def processor(settings: Settings) -> None:
    """Run a processor worker: ace.samples and ace.sync_runs into ClickHouse.

    Refuses to start when the ClickHouse schema lacks a migration (run `streamer migrate`). Run as
    many workers as wanted with the same processor_app_id: they split the partitions.
    """
    from streamer.sink.writer import Sink

    # chdb imports pyarrow when it is installed (the engine extra pulls it in), for Arrow answers the
    # processor never asks for: 38 MB of RSS (27 of mapped libraries). chdb works without it.
    without_modules(UNUSED_MODULES)
    # Before any thread starts (the engine's, the insert threads): arenas are assigned as threads malloc.
    tune_malloc(
        mmap_threshold=settings.processor_malloc_mmap_threshold, arena_max=settings.processor_malloc_arena_max
    )
    tune_engine_malloc(settings.processor_engine_malloc_conf)  # before the engine's library loads
    sink = Sink(settings)
    sink.check_schema()  # SchemaError names the missing migration: one line, exit 1
    if settings.processor_engine_pageout_interval_s:  # and on the app's timer from then on
        released = release_library_pages(ENGINE_LIBRARY)  # 0 against a ClickHouse server: no engine loaded
        log.info("paged out the engine library's start-up pages (%d MB mapped)", released >> 20)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # faust creates its own topics (table changelogs, the leader topic): replicated like ours.
    settings = loop.run_until_complete(resolve_replication(settings))
    loop.run_until_complete(ensure_topics(settings))
    if settings.log_level != "debug":
        # faust and mode narrate every service start and stop at INFO: keep our own lines readable.
        for noisy in ("faust", "mode"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    processor_app = create_app(settings, sink_factory=lambda: sink)
    faust_seam.run_worker(processor_app.app, loop, settings.log_level, before_start=_tune_runtime)


def _tune_runtime() -> None:
    tune_gc()
    shorten_gil_switch()
