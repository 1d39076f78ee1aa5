"""The faust app of the processor: two agents, a points table, a DLQ writer, a web server.

``create_app(settings)`` builds a ``ProcessorApp``: ``.app`` is the faust app (the query API mounts
its routes on ``.app``'s web server), ``.runtime`` the shared resources, started lazily by the first
agent that runs (the points table is fully recovered before any sample is judged).

Each topic's messages reach its pipeline as ``port.Delivery``s, offered by the consumer's fetch loop
to the topic's ``batch_buffer.BufferInlet`` and acked through ``faust_seam.ack_for``; faust itself
is reached only through ``faust_seam``. A pipeline's failure (DLQ unwritable, a bug) stops the
worker without committing what was not acked, and the process supervisor restarts it from the
committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streamer.metrics import CONSUMER_LAG
from streamer.processor import faust_seam
from streamer.processor.batch_buffer import BatchBuffer, BufferInlet
from streamer.processor.batch_items import Item, item_of
from streamer.processor.dlq import DlqWriter
from streamer.processor.faust_seam import SeamApp
from streamer.processor.pipeline import SamplesPipeline, insert_points
from streamer.processor.points_table import PointsTable
from streamer.processor.port import Ack, Delivery
from streamer.processor.sync_runs import SyncRunsPipeline
from streamer.runtime import ENGINE_LIBRARY, release_library_pages, trim_heap
from streamer.settings import Settings
from streamer.sink.rows import PointRow
from streamer.webguard import Policy, check_bind, install

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 2.0
# glibc keeps the pages of freed C-heap chunks (Kafka fetch buffers, record bytes, insert columns)
# in the process: the free part of its heap grew from 15 to 30 MB over 15 minutes of a live worker.
HEAP_TRIM_INTERVAL_S = 60.0
WEB_HOST_SETTING = "STREAMER_PROCESSOR_WEB_HOST"
SYNC_RUNS_BATCH = 500


class ProcessorRuntime:
    """What the agents of one worker share: sink, points table, DLQ writer and the pipelines."""

    def __init__(self, settings: Settings, sink_factory: Callable[[], Any]) -> None:
        self.settings = settings
        self._sink_factory = sink_factory
        self.sink: Any = None
        self.table: PointsTable | None = None
        self.dlq: DlqWriter | None = None
        self.samples: SamplesPipeline | None = None
        self._lock: asyncio.Lock | None = None
        self.started = False
        self.closers: list[Callable[[], Awaitable[None]]] = []

    async def ensure_started(self) -> ProcessorRuntime:
        """Start once: open the sink, connect the DLQ, recover the points table to its end."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.started:
                await self._start()
                self.started = True
        return self

    async def _start(self) -> None:
        if self.sink is None:
            self.sink = await asyncio.to_thread(self._sink_factory)
        self.dlq = DlqWriter(self.settings)
        await self.dlq.start()
        self.table = PointsTable(self.settings)
        await self.table.start()
        sink = self.sink

        async def flush(rows: list[PointRow]) -> None:
            await insert_points(self.settings, sink, rows)

        # The points rows go to ClickHouse a chunk at a time as the table reads; the pipeline's
        # first refresh inserts what is left.
        await self.table.wait_recovered(flush)

    def samples_pipeline(self, ack: Ack) -> SamplesPipeline:
        assert self.table is not None and self.dlq is not None
        self.samples = SamplesPipeline(self.settings, self.sink, self.table, self.dlq, ack)
        return self.samples

    def sync_runs_pipeline(self, ack: Ack) -> SyncRunsPipeline:
        assert self.dlq is not None
        return SyncRunsPipeline(self.settings, self.sink, self.dlq, ack)

    async def stop(self) -> None:
        for close in self.closers:
            await close()
        if self.table is not None:
            await self.table.stop()
        if self.dlq is not None:
            await self.dlq.stop()


@dataclass
class ProcessorApp:
    """The faust app and the runtime its agents share."""

    app: SeamApp
    runtime: ProcessorRuntime


def create_app(
    settings: Settings, sink_factory: Callable[[], Any] | None = None, *, query_api: bool = True
) -> ProcessorApp:
    """The processor's faust app. ``sink_factory`` defaults to ``streamer.sink.writer.Sink(settings)``;
    ``query_api`` mounts the query API (and /metrics, /health) on the app's web server."""
    runtime = ProcessorRuntime(settings, sink_factory or _default_sink(settings))
    hook = _query_api_hook(settings, runtime) if query_api else _guard_hook(settings)
    app = faust_seam.new_app(settings, [hook])
    check_bind(settings, settings.processor_web_host, WEB_HOST_SETTING)
    if settings.processor_fault_hooks:  # test only: absent unless the setting is on
        from streamer.processor.faults import add_fault_hooks

        add_fault_hooks(app, settings)
        log.warning("fault hooks enabled (test only)")
    _add_samples_agent(app, runtime, settings)
    _add_sync_runs_agent(app, runtime, settings)

    async def refresh() -> None:
        await _refresh(app, runtime)

    faust_seam.add_timer(app, REFRESH_INTERVAL_S, refresh)
    faust_seam.add_timer(app, HEAP_TRIM_INTERVAL_S, _trim_heap)
    if settings.processor_engine_pageout_interval_s:
        faust_seam.add_timer(app, settings.processor_engine_pageout_interval_s, _page_out_engine)
    faust_seam.on_stop(app, runtime.stop)
    return ProcessorApp(app, runtime)


def _query_api_hook(settings: Settings, runtime: ProcessorRuntime) -> Callable[[Any], None]:
    """Mount the query API (streamer.query.api) on faust's aiohttp application, as that module asks."""

    def mount_query_api(web: Any) -> None:
        from streamer.query.api import mount
        from streamer.query.service import QueryService

        service = QueryService(settings)
        runtime.closers.append(service.close)
        mount(web.web_app, settings, service, settings.processor_web_host, WEB_HOST_SETTING)

    return mount_query_api


def _guard_hook(settings: Settings) -> Callable[[Any], None]:
    """Without the query API, the web server's routes are guarded all the same."""

    def guard(web: Any) -> None:
        install(web.web_app, Policy.of(settings, settings.processor_web_host, frozenset()))

    return guard


def _default_sink(settings: Settings) -> Callable[[], Any]:
    def build() -> Any:
        from streamer.sink.writer import Sink

        return Sink(settings)

    return build


def _add_samples_agent(app: SeamApp, runtime: ProcessorRuntime, settings: Settings) -> None:
    inlet = BufferInlet()

    async def run() -> None:
        await runtime.ensure_started()
        pipeline = runtime.samples_pipeline(faust_seam.ack_for(app))
        faust_seam.on_drain(app, pipeline.drain, pipeline.drained)  # held acks go before a stop or rebalance
        buffer: BatchBuffer[Delivery, Item] = BatchBuffer(
            lambda delivery: pipeline.prepare(item_of(delivery)),
            max_rows=settings.batch_max_rows,
            max_s=settings.batch_max_s,
        )
        inlet.open(buffer)
        await pipeline.run(buffer.batches())

    faust_seam.add_inlet_agent(
        app, "samples", settings.topic_samples, settings.samples_partitions, inlet, run
    )


def _add_sync_runs_agent(app: SeamApp, runtime: ProcessorRuntime, settings: Settings) -> None:
    inlet = BufferInlet()

    async def run() -> None:
        await runtime.ensure_started()
        pipeline = runtime.sync_runs_pipeline(faust_seam.ack_for(app))
        buffer: BatchBuffer[Delivery, Item] = BatchBuffer(
            lambda delivery: (item_of(delivery), 1), max_rows=SYNC_RUNS_BATCH, max_s=settings.batch_max_s
        )
        inlet.open(buffer)
        async for batch in buffer.batches():
            await pipeline.handle(batch)

    faust_seam.add_inlet_agent(
        app, "sync_runs", settings.topic_sync_runs, settings.sync_partitions, inlet, run
    )


async def _page_out_engine() -> None:
    # In a thread: the kernel takes ~0.1 s to walk the library's 529 MB of mappings.
    await asyncio.to_thread(release_library_pages, ENGINE_LIBRARY)


async def _trim_heap() -> None:
    trim_heap()


async def _refresh(app: SeamApp, runtime: ProcessorRuntime) -> None:
    """Keep the points table (and ClickHouse's points) fresh when no samples flow; export lag."""
    pipeline = runtime.samples
    if pipeline is None:
        return
    await pipeline.refresh_points()
    for topic, partition, highwater in faust_seam.highwaters(app):
        acked = pipeline.acked.get((topic, partition))
        if acked is not None and highwater is not None:
            CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(highwater - acked - 1)
