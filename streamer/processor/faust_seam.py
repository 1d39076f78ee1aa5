"""The processor's one contact with faust (and mode): everything else sees ``port`` only.

faust runs the group membership, the fetch loop, the commits and the web server. What the processor
does differently lives here, as subclasses with method overrides (no instance is patched), and every
private name they rely on is checked when the app is built (``check_faust``): a faust that renamed
one fails at start-up with one line naming its version, instead of silently losing a guarantee.

1. Inlets. For every message faust's conductor decodes an event, puts it in an agent's stream queue,
and the stream's iterator takes it out again; acking goes back through the event, a reference count
and the message: about 100 us a record, ~45 % of the event loop's CPU (bench/processor.py, backfill
shape: the loop's CPU went from 27 to 14 s, 138k to 191k samples/s). The processor's topics
(``ace.samples``, ``ace.sync_runs``) skip it: ``SeamConsumer.getmany`` hands each of their messages to
the topic's ``port.Inlet`` as a ``port.Delivery`` (``offer`` prepares it into the pipeline's batch
buffer, synchronously), marks it read and tracks it as faust's fetch loop (``_drain_messages``) and
conductor would: the read offset, the gaps (so commits can pass them), older messages dropped. An
inlet that is full (or not opened yet: the points table is still recovering) refuses the delivery,
and the fetch waits for room as a blocked delivery does, under faust's ``wait_first``: a rebalance
suspending the flow, a stop or a crash ends the wait, and the refused message and the rest of the
fetch are not marked read (read again from the committed offset). The pipeline acks each delivery
through ``ack_for(app)``: current-generation ones only, recorded by ``acks.AckGate``.

The inlet skips one step of faust's fetch loop: the ``broker_commit_every`` check (commit at once when
that many messages were acked since the last such commit; faust's default, kept here, is 10,000). It
only ever brings a commit forward: what is committed is still chosen by ``_new_offset`` (capped by
the gate) on faust's commit timer (``broker_commit_interval``, 1 s here), so skipping it delays a
commit by at most that interval and can never commit an offset nobody released. At the processor's
rates (a few thousand records a second) 10,000 acks take longer than the timer's second anyway.

2. The commit cap. ``SeamConsumer._new_offset`` (faust's choice of the offset to commit for a
partition) is capped by the app's ``acks.AckGate`` (why: its docstring).

3. Inline dispatch. Messages of other topics (none of the processor's own today) go through faust's
``wait_first(callback(message), suspend_flow.wait())``, which wraps each argument and the consumer's
stopped and crashed events in a task and waits on the four: about 65 us a message. A delivery almost
never blocks, so ``SeamConsumer.wait_first`` first steps the callback in place; if it completes
without yielding, that is the result ``wait_first`` would have returned; if it yields, the
coroutine, suspended where it is, goes through faust's own ``wait_first`` (``Continued``). When the
worker is stopping, crashed or its flow suspended, faust's path is taken from the start.

4. ``SeamProducer``: faust starts its own aiokafka producer, which the processor never sends through
(faust declares topics with it). A producer that has sent nothing asks the broker for every topic's
metadata at each refresh (``metadata_max_age``, 5 min) and keeps it: on a shared broker of thousands
of topics, a new copy of ~10,000 partitions' objects every 5 minutes, a steady RSS climb of a live
worker. It is started tracking only the app's topics (``SeamApp.own_topics``).

5. The liveness check (``verify_event_path``) of a partition starts at its assignment, not at the
worker's start (``SeamConsumer.verify_event_path``).

6. ``QuietMonitor``: faust's default Monitor updates counters four times per message for faust's own
stats views, which nothing here reads (the processor's figures are streamer.metrics, on /metrics).
It keeps one: faust's liveness check (``verify_event_path``, every few seconds) logs the ERROR
"Stream has not started processing" for a partition with unread data whose stream took no event for
``stream_processing_timeout`` (300 s), and the inlets bypass the streams. ``getmany`` therefore stamps
``stream_inbound_time`` of each partition it delivers to an inlet, as a stream's first step would.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Mapping
from importlib.metadata import version
from time import monotonic
from typing import Any, ClassVar, cast

import faust
import mode
from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message
from faust.web import Request, Response, View
from mode.services import WaitResults

from streamer.errors import ConfigError
from streamer.processor.acks import AckGate
from streamer.processor.port import Ack, Delivery, Inlet
from streamer.settings import Settings

TESTED_FAUST = ">=0.15.3,<0.16"  # as pinned in pyproject.toml (a test checks they agree)
YIELD_EVERY = 100  # deliveries offered in a row before the fetch lets other tasks run (as faust's loop)

# (owner, name, parameters): the methods the subclasses below override or call.
_METHODS: tuple[tuple[type[Any], str, tuple[str, ...]], ...] = (
    (faust_aiokafka.Consumer, "getmany", ("self", "timeout")),
    (faust_aiokafka.Consumer, "wait_first", ("self", "coros", "timeout")),
    (faust_aiokafka.Consumer, "track_message", ("self", "message")),
    (faust_aiokafka.Consumer, "ack", ("self", "message")),
    (faust_aiokafka.Consumer, "_new_offset", ("self", "tp")),
    (faust_aiokafka.Consumer, "_add_gap", ("self", "tp", "offset_from", "offset_to")),
    (faust_aiokafka.Consumer, "wait_empty", ("self",)),
    (faust_aiokafka.Consumer, "on_partitions_assigned", ("self", "assigned", "generation_id")),
    (faust_aiokafka.Consumer, "verify_event_path", ("self", "now", "tp")),
    (faust_aiokafka.Producer, "on_start", ("self",)),
    (faust.App, "_new_transport", ("self",)),
    (faust.App, "on_webserver_init", ("self", "web")),
    (Monitor, "on_message_in", ("self", "tp", "offset", "message")),
    (Monitor, "on_stream_event_in", ("self", "tp", "offset", "stream", "event")),
    (Monitor, "on_stream_event_out", ("self", "tp", "offset", "stream", "event", "state")),
    (Monitor, "on_message_out", ("self", "tp", "offset", "message")),
)
_CLASS_ATTRIBUTES: tuple[tuple[type[Any], str], ...] = (
    (faust_aiokafka.Transport, "Consumer"),
    (faust_aiokafka.Transport, "Producer"),
    (faust_aiokafka.Producer, "_producer"),
)
# Set by faust's (and mode's) __init__ on every consumer: checked on ours once built.
_CONSUMER_ATTRIBUTES = ("_read_offset", "_stopped", "_crashed", "suspend_flow")


def _unsupported(what: str) -> ConfigError:
    return ConfigError(
        f"faust-streaming {version('faust-streaming')} is not a tested version ({TESTED_FAUST}): {what}"
        " (streamer.processor.faust_seam relies on it)"
    )


def check_faust() -> None:
    """Raise ``ConfigError`` (one line, naming faust's version) if a name the seam uses is gone."""
    for owner, name, params in _METHODS:
        method = getattr(owner, name, None)
        if not callable(method):
            raise _unsupported(f"{owner.__qualname__}.{name} is missing")
        found = tuple(inspect.signature(method).parameters)
        if found != params:
            raise _unsupported(f"{owner.__qualname__}.{name}{found} is not {name}{params}")
    for owner, name in _CLASS_ATTRIBUTES:
        if not hasattr(owner, name):
            raise _unsupported(f"{owner.__qualname__}.{name} is missing")
    if WaitResults._fields != ("done", "results", "stopped"):
        raise _unsupported(f"mode's WaitResults fields are {WaitResults._fields}")


def delivery_of(message: Any) -> Delivery:
    """The port's view of a faust message (raw key and value bytes, headers as a dict)."""
    headers = message.headers or {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    return Delivery(
        message.topic,
        message.partition,
        message.offset,
        message.generation_id,
        message.key,
        message.value,
        {str(k): bytes(v) if v is not None else b"" for k, v in pairs},
        message,
    )


class Continued:
    """Awaitable that goes on with a coroutine already stepped once (it yielded ``pending``)."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class SeamConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer with inlets, the commit cap and inline dispatch (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in _CONSUMER_ATTRIBUTES:
            if not hasattr(self, name):
                raise _unsupported(f"a consumer has no {name}")
        self.assigned_at: dict[Any, float] = {}

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        now = monotonic()
        self.assigned_at = {tp: now for tp in assigned}  # every assignment starts each fetch afresh
        await super().on_partitions_assigned(assigned, generation_id)

    def verify_event_path(self, now: float, tp: Any) -> None:
        """faust's liveness check of a partition, from its assignment on: faust counts from the
        worker's start, so after a rebalance every partition not fetched yet (a fetch is under way)
        was logged as an ERROR "has not sent fetch request since start"."""
        assigned = self.assigned_at.get(tp)
        if assigned is not None and now - assigned < self.app.conf.stream_processing_timeout:
            return None
        super().verify_event_path(now, tp)

    def _new_offset(self, tp: Any) -> int | None:
        """faust's choice of the offset to commit, capped at what the pipeline released."""
        proposed: int | None = super()._new_offset(tp)
        return cast(SeamApp, self.app).ack_gate.cap(tp, proposed)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """faust's messages, less those of topics with an inlet: those are offered to the inlet."""
        inlets = cast(SeamApp, self.app).inlets
        read_offset = self._read_offset
        inbound = cast(QuietMonitor, self.app.monitor).stream_inbound_time
        now = monotonic()
        since_yield = 0
        async for tp, message in super().getmany(timeout):
            inlet = inlets.get(tp.topic)
            if inlet is None:
                yield tp, message
                continue
            last = read_offset[tp]
            if last is not None and message.offset < last:
                continue  # read before a seek back, and delivered then: as faust's fetch loop does
            if last is not None and message.offset - last > 1:
                await self._add_gap(tp, last + 1, message.offset)
            delivery = delivery_of(message)
            if not inlet.offer(delivery) and not await self._offer_when_room(inlet, delivery):
                return  # the flow was suspended or the worker stops: re-read from the commit
            self.track_message(message)  # faust holds it until it is acked: the bytes are the delivery's
            message.key = message.value = None
            read_offset[tp] = message.offset
            inbound[tp] = now
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)  # let the pipeline and timers run during a long fetch

    async def _offer_when_room(self, inlet: Inlet, delivery: Delivery) -> bool:
        """Offer again each time the inlet has room; False once the flow is suspended or we stop."""
        while True:
            if not self._inline_allowed():
                return False
            waited = await super().wait_first(inlet.wait_room(), self.suspend_flow.wait())
            if waited.stopped or self.suspend_flow.is_set():
                return False
            if inlet.offer(delivery):
                return True

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if not inspect.iscoroutine(first) or not self._inline_allowed():
            return await super().wait_first(*coros, timeout=timeout)
        try:
            pending = first.send(None)
        except StopIteration as done:
            _close(coros[1:])
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        return await super().wait_first(Continued(first, pending), *coros[1:], timeout=timeout)

    async def wait_empty(self) -> None:
        """faust waits here, its flow stopped, until every tracked message is acked (before a stop,
        and before a rebalance gives partitions away): the pipelines first release what they hold,
        and release at once what they load meanwhile, until faust's wait ends."""
        drains = cast(SeamApp, self.app).drains
        try:
            for begin, _ in drains:
                await begin()
            await super().wait_empty()
        finally:
            for _, end in drains:
                end()

    def _inline_allowed(self) -> bool:
        stopped = self._stopped.is_set() or self._crashed.is_set()
        return not (self.suspend_flow.is_set() or stopped)


class SeamProducer(faust_aiokafka.Producer):
    """faust's aiokafka producer, tracking the metadata of the app's topics only (module docstring)."""

    async def on_start(self) -> None:
        await super().on_start()
        producer = self._producer
        if producer is None:
            raise _unsupported("a started Producer has no aiokafka producer")
        topics = sorted(cast(SeamApp, self.app).own_topics)
        if topics:  # none names every topic, as aiokafka's default; a send adds its topic to them
            await producer.client.set_topics(topics)


class SeamTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with ``SeamConsumer`` and ``SeamProducer``."""

    Consumer: ClassVar[type[Any]] = SeamConsumer
    Producer: ClassVar[type[Any]] = SeamProducer


def _close(coros: tuple[Any, ...]) -> None:
    """Close the other waitables' coroutines, never awaited now (no 'never awaited' warning)."""
    for coro in coros:
        if inspect.iscoroutine(coro):
            coro.close()


class QuietMonitor(Monitor):
    """faust's Monitor without its per-message bookkeeping (see the module docstring)."""

    stream_inbound_time: dict[Any, float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(getattr(self, "stream_inbound_time", None), dict):
            raise _unsupported("a Monitor has no stream_inbound_time")

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[str, Any] | None = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None


class SeamApp(faust.App):
    """faust's App with ``SeamTransport``, web-server init callbacks (routes go in then), the inlets
    its consumer hands topics' deliveries to, and the ack gate capping its commits."""

    def __init__(self, *args: Any, web_init_hooks: list[Callable[[Any], None]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.web_init_hooks = web_init_hooks
        self.inlets: dict[str, Inlet] = {}
        self.drains: list[tuple[Callable[[], Awaitable[None]], Callable[[], None]]] = []
        self.ack_gate = AckGate(lambda: self.consumer_generation_id)

    @property
    def own_topics(self) -> set[str]:
        """The topics the app's agents consume (what faust declares through its producer)."""
        return set(self.inlets)

    def _new_transport(self) -> Any:
        return SeamTransport(self.conf.broker_consumer, self)

    def on_webserver_init(self, web: Any) -> None:
        for hook in self.web_init_hooks:
            hook(web)


def new_app(settings: Settings, web_init_hooks: list[Callable[[Any], None]]) -> SeamApp:
    """The processor's faust app, after ``check_faust``."""
    check_faust()
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    return SeamApp(
        settings.processor_app_id,
        web_init_hooks=web_init_hooks,
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
        # Events held per partition queue ahead of an agent: bounds memory (the processor's own topics
        # go through their inlets and the pipelines' two buffers instead).
        stream_buffer_maxsize=1024,
        # A poll decodes every record of a fetch at once, and they are held until the inlets took them:
        # at 1 MiB a partition ~36 MB of values in bench/processor.py, half at the default 512 KiB (see
        # the setting for the trade).
        # A poll capped in records instead (broker_max_poll_records) drains partitions one after the
        # other, hours apart, and each rollup recompute reads more hours (chdb's query threads +4-6 CPU-s).
        consumer_max_fetch_size=settings.processor_fetch_partition_bytes,
        Monitor=QuietMonitor,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.processor_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.processor_session_timeout_s / 6),
        autodiscover=False,
    )


def add_inlet_agent(
    app: SeamApp, name: str, topic: str, partitions: int, inlet: Inlet, run: Callable[[], Awaitable[None]]
) -> None:
    """Subscribe ``topic`` (raw bytes): its deliveries go to ``inlet``; ``run()`` is the worker's
    task for it, under a CRASHING supervisor (a failure stops the worker without committing what was
    not acked; faust's default would restart the agent in place, past its unacked events)."""
    channel = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
    app.inlets[topic] = inlet

    async def agent(stream: Any) -> None:
        """Its messages never reach ``stream``: the fetch loop offers them to the inlet."""
        await run()

    app.agent(channel, name=name, supervisor_strategy=mode.CrashingSupervisor)(agent)


def ack_for(app: SeamApp) -> Ack:
    """The port's ack: current-generation deliveries only, released through the app's gate."""
    consumer = app.consumer

    async def ack(delivery: Delivery) -> bool:
        return bool(consumer.ack(cast(Message, delivery.token)))

    return app.ack_gate.releaser(ack)


def on_drain(app: SeamApp, begin: Callable[[], Awaitable[None]], end: Callable[[], None]) -> None:
    """``begin()`` when the consumer waits for every delivery to be acked (a stop or a revocation, its
    flow stopped), ``end()`` when that wait is over (``SeamConsumer.wait_empty``)."""
    app.drains.append((begin, end))


def add_timer(app: SeamApp, interval_s: float, tick: Callable[[], Awaitable[None]]) -> None:
    """Run ``tick()`` every ``interval_s`` while the worker runs."""
    app.timer(interval=interval_s)(tick)


def on_stop(app: SeamApp, stop: Callable[[], Awaitable[None]]) -> None:
    """Await ``stop()`` before the worker shuts down."""

    async def _stop(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        await stop()

    app.on_before_shutdown.connect(_stop)


def highwaters(app: SeamApp) -> list[tuple[str, int, int | None]]:
    """(topic, partition, high watermark) of every partition assigned now."""
    consumer = app.consumer
    return [(tp.topic, tp.partition, consumer.highwater(tp)) for tp in consumer.assignment()]


def add_post_route(
    app: SeamApp, path: str, handle: Callable[[Mapping[str, str]], Awaitable[tuple[dict[str, Any], int]]]
) -> None:
    """A POST route on the app's web server: ``handle(query)`` returns the JSON body and status."""

    class Route(View):
        async def post(self, request: Request, **kwargs: Any) -> Response:
            body, status = await handle(request.query)
            return self.json(body, status=status)

    app.page(path)(Route)


def run_worker(
    app: SeamApp, loop: asyncio.AbstractEventLoop, loglevel: str, before_start: Callable[[], None]
) -> None:
    """Run ``app`` as a faust worker on ``loop`` until it stops (no spinner, faust leaves logging be);
    ``before_start()`` runs once the worker is built (its start-up objects exist), before it starts."""
    worker = faust.Worker(
        app, loop=loop, loglevel=loglevel, quiet=True, override_logging=False, redirect_stdouts=False
    )
    worker.spinner = None  # a terminal spinner writes escape codes to stdout, also when not a tty
    before_start()
    worker.execute_from_commandline()
