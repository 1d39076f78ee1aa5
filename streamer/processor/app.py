"""The faust app of the processor: two agents, a points table, a DLQ writer, a web server.

``create_app(settings)`` builds a ``ProcessorApp``: ``.app`` is the faust app (the query API mounts
its routes on ``.app``'s web server), ``.runtime`` the shared resources, started lazily by the first
agent that runs (the points table is fully recovered before any sample is judged).

The samples agent's stream stays empty: the consumer's fetch loop offers ``ace.samples`` messages to
its ``SamplesInlet`` directly (``hotpath``), into the pipeline's ``take.BatchBuffer``.

Agents use a CRASHING supervisor: any failure (DLQ unwritable, a bug) stops the worker without
committing what was not acked, and the process supervisor restarts it from the committed offsets;
faust's default supervisor would restart the agent in place, past its unacked events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
import mode

from streamer.metrics import CONSUMER_LAG
from streamer.processor.acks import AckGate
from streamer.processor.dlq import DlqWriter
from streamer.processor.hotpath import Inlet, InlineDispatchTransport, QuietMonitor
from streamer.processor.pipeline import SamplesPipeline
from streamer.processor.points_table import PointsTable
from streamer.processor.records import Item
from streamer.processor.sync_runs import SyncRunsPipeline
from streamer.processor.take import BatchBuffer, batches
from streamer.settings import Settings
from streamer.webguard import Policy, check_bind, install

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 2.0
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
        self._gate: AckGate | None = None

    def gate(self, app: Any) -> AckGate:
        """The worker's one ack gate (both agents release through it)."""
        if self._gate is None:
            self._gate = AckGate(app)
        return self._gate

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
        await self.table.wait_recovered()

    def samples_pipeline(self, ack: Callable[[Any], Any]) -> SamplesPipeline:
        assert self.table is not None and self.dlq is not None
        self.samples = SamplesPipeline(self.settings, self.sink, self.table, self.dlq, ack)
        return self.samples

    def sync_runs_pipeline(self, ack: Callable[[Any], Any]) -> SyncRunsPipeline:
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

    app: faust.App
    runtime: ProcessorRuntime


def item_from_event(event: Any) -> Item:
    """The pipeline's view of a faust event (acked through the event)."""
    return item_from_message(event.message, event)


def item_from_message(message: Any, handle: Any = None) -> Item:
    """The pipeline's view of a faust message (raw key and value bytes, headers as a dict)."""
    headers = message.headers or {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    return Item(
        handle=message if handle is None else handle,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        key=message.key,
        value=message.value,
        headers={str(k): bytes(v) if v is not None else b"" for k, v in pairs},
    )


class SamplesInlet:
    """The fetch loop's way into the samples pipeline: refuses every message until the agent has
    recovered the points table and opened it with its batch buffer (nothing is judged before)."""

    def __init__(self) -> None:
        self._buffer: BatchBuffer[Any, Item] | None = None
        self._opened = asyncio.Event()

    def open(self, buffer: BatchBuffer[Any, Item]) -> None:
        self._buffer = buffer
        self._opened.set()

    def offer(self, message: Any) -> bool:
        return self._buffer is not None and self._buffer.offer(message)

    async def wait_room(self) -> None:
        await self._opened.wait()
        assert self._buffer is not None
        await self._buffer.wait_room()


class _App(faust.App):
    """faust's App with web-server init callbacks (routes go in then), the inline-dispatch consumer,
    and the inlets it hands topics' messages to (``hotpath``)."""

    web_init_hooks: list[Callable[[Any], None]]
    inlets: dict[str, Inlet]

    def _new_transport(self) -> Any:
        return InlineDispatchTransport(self.conf.broker_consumer, self)

    def on_webserver_init(self, web: Any) -> None:
        for hook in self.web_init_hooks:
            hook(web)


def create_app(
    settings: Settings, sink_factory: Callable[[], Any] | None = None, *, query_api: bool = True
) -> ProcessorApp:
    """The processor's faust app. ``sink_factory`` defaults to ``streamer.sink.writer.Sink(settings)``;
    ``query_api`` mounts the query API (and /metrics, /health) on the app's web server."""
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = _App(
        settings.processor_app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")],
        broker_client_id=settings.kafka_client_id,
        store="memory://",
        topic_partitions=settings.samples_partitions,
        # `streamer processor` resolves an unset factor against the cluster first (resolve_replication).
        topic_replication_factor=settings.replication_factor or 1,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_port=settings.processor_web_port,
        web_bind=settings.processor_web_host,
        web_host=settings.processor_web_host,
        # faust's own views (/router, /table: table contents; /graph, /stats, /performance) are off:
        # the query API, /health and /metrics are what this port serves. Its index at / stays,
        # behind the token like every other route (streamer.webguard, installed by the web hook).
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        # Events held per partition queue ahead of an agent (ace.sync_runs; ace.samples goes through
        # its inlet and the pipeline's two buffers instead): bounds memory.
        stream_buffer_maxsize=1024,
        Monitor=QuietMonitor,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.processor_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.processor_session_timeout_s / 6),
        autodiscover=False,
    )
    check_bind(settings, settings.processor_web_host, WEB_HOST_SETTING)
    runtime = ProcessorRuntime(settings, sink_factory or _default_sink(settings))
    app.web_init_hooks = [_query_api_hook(settings, runtime) if query_api else _guard_hook(settings)]
    if settings.processor_fault_hooks:  # test only: absent unless the setting is on
        from streamer.processor.faults import add_fault_hooks

        add_fault_hooks(app, settings)
        log.warning("fault hooks enabled (test only)")
    app.inlets = {}
    _add_samples_agent(app, runtime, settings)
    _add_sync_runs_agent(app, runtime, settings)
    _add_timer(app, runtime)
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


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)


def _add_samples_agent(app: _App, runtime: ProcessorRuntime, settings: Settings) -> None:
    topic = _raw_topic(app, settings.topic_samples, settings.samples_partitions)

    inlet = app.inlets[settings.topic_samples] = SamplesInlet()

    @app.agent(topic, name="samples", supervisor_strategy=mode.CrashingSupervisor)
    async def samples(stream: Any) -> None:
        """Its messages never reach ``stream``: the fetch loop offers them to ``inlet`` (hotpath)."""
        await runtime.ensure_started()
        consumer = app.consumer

        async def ack(message: Any) -> bool:
            return bool(consumer.ack(message))

        pipeline = runtime.samples_pipeline(runtime.gate(app).releaser(ack, message_of=_itself))
        buffer: BatchBuffer[Any, Item] = BatchBuffer(
            lambda message: pipeline.prepare(item_from_message(message)),
            max_rows=settings.batch_max_rows,
            max_s=settings.batch_max_s,
        )
        inlet.open(buffer)
        await pipeline.run(buffer.batches())


def _itself(handle: Any) -> Any:
    return handle


def _add_sync_runs_agent(app: faust.App, runtime: ProcessorRuntime, settings: Settings) -> None:
    topic = _raw_topic(app, settings.topic_sync_runs, settings.sync_partitions)

    @app.agent(topic, name="sync_runs", supervisor_strategy=mode.CrashingSupervisor)
    async def sync_runs(stream: Any) -> None:
        await runtime.ensure_started()
        manual = stream.noack()
        pipeline = runtime.sync_runs_pipeline(runtime.gate(app).releaser(manual.ack))
        async for batch in _batches(manual, SYNC_RUNS_BATCH, settings.batch_max_s, lambda i: (i, 1)):
            await pipeline.handle(batch)


def _batches(
    stream: Any, max_rows: int, max_s: float, prep: Callable[[Item], tuple[Item, int]]
) -> AsyncIterator[list[Item]]:
    return batches(
        stream.events(), lambda event: prep(item_from_event(event)), max_rows=max_rows, max_s=max_s
    )


def _add_timer(app: faust.App, runtime: ProcessorRuntime) -> None:
    @app.timer(interval=REFRESH_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh() -> None:
        """Keep the points table (and ClickHouse's points) fresh when no samples flow; export lag."""
        pipeline = runtime.samples
        if pipeline is None:
            return
        await pipeline.refresh_points()
        consumer = app.consumer
        for tp in consumer.assignment():
            acked = pipeline.acked.get((tp.topic, tp.partition))
            highwater = consumer.highwater(tp)
            if acked is not None and highwater is not None:
                CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(highwater - acked - 1)

    @app.on_before_shutdown.connect
    async def _stop(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        await runtime.stop()
