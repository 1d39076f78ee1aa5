"""The faust seam: inline dispatch as faust's wait_first, inlets as faust's fetch loop, the start-up check."""

from __future__ import annotations

import asyncio
import time
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from streamer.errors import ConfigError
from streamer.processor import faust_seam
from streamer.processor.app import create_app
from streamer.processor.batch_buffer import BatchBuffer, BufferInlet
from streamer.processor.faust_seam import Continued, QuietMonitor, SeamConsumer
from tests.isolation import isolated_settings


@pytest.fixture
async def consumer(tmp_path: Path) -> Any:
    """The processor app's real (unstarted) consumer, on the test's event loop."""
    settings = isolated_settings("hotpath", tmp_path)
    consumer = create_app(settings, sink_factory=lambda: None, query_api=False).app.consumer
    consumer.loop = asyncio.get_running_loop()
    return consumer


def test_the_processor_app_uses_the_inline_consumer_and_the_quiet_monitor(tmp_path: Path) -> None:
    """create_app wires both in: the transport's consumer class and the app's monitor."""
    app = create_app(isolated_settings("hotpath", tmp_path), sink_factory=lambda: None, query_api=False).app
    assert isinstance(app.consumer, SeamConsumer)
    assert isinstance(app.monitor, QuietMonitor)


async def test_a_delivery_that_does_not_block_runs_inline_without_tasks(
    consumer: Any, monkeypatch: Any
) -> None:
    """The callback's result comes back at once; faust's wait_first (and its four tasks) is not used."""
    monkeypatch.setattr(Service, "wait_first", _forbidden)
    delivered: list[int] = []

    async def deliver(offset: int) -> str:
        delivered.append(offset)
        return f"done {offset}"

    suspend = consumer.suspend_flow.wait()
    result = await consumer.wait_first(deliver(7), suspend)
    assert (result.done, result.results, result.stopped) == ([result.done[0]], ["done 7"], False)
    assert delivered == [7]
    assert suspend.cr_frame is None  # the unused waiter was closed, not left un-awaited


async def test_a_blocked_delivery_goes_on_through_faust_and_completes(consumer: Any) -> None:
    """A callback that waits (a full stream buffer) finishes under faust's wait_first once unblocked."""
    room = asyncio.Event()
    steps: list[str] = []

    async def deliver() -> str:
        steps.append("started")
        await room.wait()
        steps.append("put")
        return "delivered"

    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.05)
    assert steps == ["started"] and not waiting.done()
    room.set()
    result = await asyncio.wait_for(waiting, 5)
    assert steps == ["started", "put"] and result.results == ["delivered"]


async def test_a_blocked_delivery_is_abandoned_when_flow_is_suspended(consumer: Any) -> None:
    """As in faust: a rebalance suspending the flow ends the wait and cancels the stuck delivery."""
    cancelled = asyncio.Event()

    async def deliver() -> None:
        try:
            await asyncio.Event().wait()  # never gets room
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.05)
    consumer.suspend_flow.set()
    result = await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(cancelled.wait(), 5)
    assert result.results == [True]  # the suspend_flow waiter won


async def test_with_the_flow_suspended_faust_path_is_taken_from_the_start(
    consumer: Any, monkeypatch: Any
) -> None:
    """No delivery runs inline while a rebalance holds the flow: faust's wait_first decides, as before."""
    calls: list[int] = []
    original = Service.wait_first

    async def spy(self: Any, *coros: Any, timeout: Any = None) -> Any:
        calls.append(len(coros))
        return await original(self, *coros, timeout=timeout)

    monkeypatch.setattr(Service, "wait_first", spy)

    async def deliver() -> str:
        return "delivered"

    await asyncio.wait_for(consumer.wait_first(deliver(), consumer.suspend_flow.wait()), 5)
    assert calls == []  # flow active: inline
    consumer.suspend_flow.set()
    await asyncio.wait_for(consumer.wait_first(deliver(), consumer.suspend_flow.wait()), 5)
    assert calls == [2]  # flow suspended: faust's own wait_first, with both waitables


async def test_a_delivery_error_propagates(consumer: Any) -> None:
    """An exception raised by the callback reaches the fetch loop, inline or not."""

    async def deliver() -> None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await consumer.wait_first(deliver(), consumer.suspend_flow.wait())


async def test_continued_passes_results_and_exceptions_through() -> None:
    """Continued resumes a stepped coroutine: awaited values go in, its return value comes out."""
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def body() -> int:
        got = await fut
        await asyncio.sleep(0)
        return got * 2

    coro = body()
    pending = coro.send(None)
    assert pending is fut
    task = asyncio.ensure_future(_await(Continued(coro, pending)))
    await asyncio.sleep(0)
    fut.set_result(21)
    assert await asyncio.wait_for(task, 5) == 42


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("faust's wait_first was used for a delivery that could run inline")


def _message(topic: str, offset: int, partition: int = 0) -> Message:
    tp = TP(topic, partition)
    return Message(topic, partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp)


class _Inlet:
    """Takes every message while it has room; counts the waits."""

    def __init__(self, room: int = 1_000) -> None:
        self.taken: list[int] = []
        self.room = room
        self.freed = asyncio.Event()

    def offer(self, message: Any) -> bool:
        if len(self.taken) >= self.room:
            return False
        self.taken.append(message.offset)
        return True

    async def wait_room(self) -> None:
        await self.freed.wait()


def _fetched(monkeypatch: Any, messages: list[Message]) -> None:
    """faust's getmany (the base class's) returns ``messages``, as if polled from the broker."""

    async def getmany(self: Any, timeout: float) -> Any:
        for message in messages:
            yield message.tp, message

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", getmany)


async def test_a_topic_with_an_inlet_is_offered_to_it_and_the_rest_goes_to_faust(
    consumer: Any, monkeypatch: Any
) -> None:
    """Inlet topics skip the conductor: offered in order, tracked, read offset kept; others are yielded."""
    inlet = _Inlet()
    consumer.app.inlets["samples"] = inlet
    polled = [_message("samples", 0), _message("other", 5), _message("samples", 1), _message("samples", 2)]
    _fetched(monkeypatch, polled)
    yielded = [(tp.topic, m.offset) async for tp, m in consumer.getmany(timeout=1.0)]
    assert yielded == [("other", 5)]
    assert inlet.taken == [0, 1, 2]
    assert consumer._read_offset[TP("samples", 0)] == 2
    assert {m.offset for m in consumer._unacked_messages if m.topic == "samples"} == {0, 1, 2}


async def test_a_tracked_message_keeps_no_bytes_the_delivery_has_them(
    consumer: Any, monkeypatch: Any
) -> None:
    """faust tracks an inlet's messages until they are acked: their key and value live in the
    delivery only, so acks held for a rollup recompute hold no record bytes."""
    offered: list[Any] = []

    class Keeping(_Inlet):
        def offer(self, message: Any) -> bool:
            offered.append(message)
            return super().offer(message)

    consumer.app.inlets["samples"] = Keeping()
    _fetched(monkeypatch, [_message("samples", 0), _message("samples", 1)])
    await _drain(consumer)
    tracked = [m for m in consumer._unacked_messages if m.topic == "samples"]
    assert len(tracked) == 2 and all(m.key is None and m.value is None for m in tracked)
    assert [(d.key, d.value) for d in offered] == [(b"k", b"v"), (b"k", b"v")]


async def test_a_full_inlet_holds_the_fetch_until_it_has_room(consumer: Any, monkeypatch: Any) -> None:
    """A refused message waits for room and is then offered again; nothing is skipped or repeated."""
    inlet = _Inlet(room=1)
    consumer.app.inlets["samples"] = inlet
    _fetched(monkeypatch, [_message("samples", 0), _message("samples", 1)])
    fetch = asyncio.ensure_future(_drain(consumer))
    await asyncio.sleep(0.05)
    assert inlet.taken == [0] and not fetch.done()
    inlet.room = 2
    inlet.freed.set()
    await asyncio.wait_for(fetch, 5)
    assert inlet.taken == [0, 1]
    assert consumer._read_offset[TP("samples", 0)] == 1


async def test_a_suspended_flow_abandons_a_waiting_fetch(consumer: Any, monkeypatch: Any) -> None:
    """A rebalance while the inlet is full ends the fetch; the refused message is not marked as read."""
    inlet = _Inlet(room=1)
    consumer.app.inlets["samples"] = inlet
    _fetched(monkeypatch, [_message("samples", 0), _message("samples", 1), _message("samples", 2)])
    fetch = asyncio.ensure_future(_drain(consumer))
    await asyncio.sleep(0.05)
    consumer.suspend_flow.set()
    await asyncio.wait_for(fetch, 5)
    assert inlet.taken == [0]
    assert consumer._read_offset[TP("samples", 0)] == 0  # 1 and 2 are read again after the rebalance


async def test_messages_before_the_read_offset_are_not_offered_again(consumer: Any, monkeypatch: Any) -> None:
    """As faust's fetch loop: a message older than the last one delivered on its partition is dropped."""
    inlet = _Inlet()
    consumer.app.inlets["samples"] = inlet
    consumer._read_offset[TP("samples", 0)] = 7
    _fetched(monkeypatch, [_message("samples", 6), _message("samples", 7), _message("samples", 8)])
    await _drain(consumer)
    assert inlet.taken == [7, 8]


async def _drain(consumer: Any) -> list[Any]:
    return [m async for _, m in consumer.getmany(timeout=1.0)]


async def test_the_samples_inlet_refuses_messages_until_the_agent_opens_it() -> None:
    """Nothing is judged before the points table is recovered: the inlet is shut until opened."""
    inlet = BufferInlet()
    message = faust_seam.delivery_of(_message("samples", 0))
    assert not inlet.offer(message)
    waiting = asyncio.ensure_future(inlet.wait_room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    taken: list[Any] = []

    def take(delivery: Any) -> tuple[Any, int]:
        taken.append(delivery)
        return delivery, 1

    inlet.open(BatchBuffer(take, max_rows=10, max_s=1.0))
    await asyncio.wait_for(waiting, 1)
    assert inlet.offer(message) and taken == [message]


async def test_an_offset_gap_is_recorded_so_commits_can_pass_it(consumer: Any, monkeypatch: Any) -> None:
    """Offsets missing between two messages (compaction, transaction markers) are noted as faust does."""
    gaps: list[tuple[Any, int, int]] = []

    async def add_gap(tp: Any, start: int, end: int) -> None:
        gaps.append((tp, start, end))

    monkeypatch.setattr(consumer, "_add_gap", add_gap)
    consumer.app.inlets["samples"] = _Inlet()
    _fetched(monkeypatch, [_message("samples", 3), _message("samples", 4), _message("samples", 9)])
    await _drain(consumer)
    assert gaps == [(TP("samples", 0), 5, 9)]


def test_every_faust_name_the_seam_relies_on_is_there() -> None:
    """With the faust installed (the tested range), the start-up check passes."""
    faust_seam.check_faust()


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (faust_consumer.Consumer, "_new_offset"),
        (faust_consumer.Consumer, "_add_gap"),
        (faust.App, "_new_transport"),
    ],
)
def test_a_missing_faust_name_stops_start_up_in_one_line(
    tmp_path: Path, monkeypatch: Any, owner: type[Any], name: str
) -> None:
    """A faust without a private name the seam uses: create_app fails, one line naming faust's version."""
    monkeypatch.delattr(owner, name)
    with pytest.raises(ConfigError) as raised:
        create_app(isolated_settings("seam", tmp_path), sink_factory=lambda: None, query_api=False)
    message = str(raised.value)
    assert "\n" not in message
    assert f"faust-streaming {version('faust-streaming')}" in message and f".{name} is missing" in message


def test_a_changed_signature_stops_start_up(monkeypatch: Any) -> None:
    """A private method the seam overrides whose parameters changed is reported, not called wrongly."""

    async def add_gap(self: Any, tp: Any, start: int) -> None:
        return None

    monkeypatch.setattr(faust_consumer.Consumer, "_add_gap", add_gap)
    with pytest.raises(ConfigError, match=r"Consumer\._add_gap\('self', 'tp', 'start'\) is not _add_gap"):
        faust_seam.check_faust()


def test_a_consumer_without_the_state_the_seam_reads_is_refused(tmp_path: Path, monkeypatch: Any) -> None:
    """The instance attributes (read offsets, mode's events) are checked when the consumer is built."""
    original = faust_consumer.Consumer.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._read_offset

    monkeypatch.setattr(faust_consumer.Consumer, "__init__", init)
    app = create_app(isolated_settings("seam", tmp_path), sink_factory=lambda: None, query_api=False).app
    with pytest.raises(ConfigError, match="a consumer has no _read_offset"):
        _ = app.consumer


def test_both_processor_topics_go_through_an_inlet(tmp_path: Path) -> None:
    """ace.samples and ace.sync_runs are handed to inlets: no processor topic takes faust's stream path."""
    settings = isolated_settings("seam", tmp_path)
    app = create_app(settings, sink_factory=lambda: None, query_api=False).app
    assert set(app.inlets) == {settings.topic_samples, settings.topic_sync_runs}
    assert all(isinstance(inlet, BufferInlet) for inlet in app.inlets.values())


def test_the_tested_faust_range_is_the_one_pinned() -> None:
    """The range the start-up error names is pyproject's pin, and the installed faust is in it."""
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert f"faust-streaming{faust_seam.TESTED_FAUST}" in pyproject["project"]["dependencies"]
    assert Version(version("faust-streaming")) in SpecifierSet(faust_seam.TESTED_FAUST)


async def test_a_delivery_to_an_inlet_stamps_its_partition_as_a_stream_would(
    consumer: Any, monkeypatch: Any
) -> None:
    """faust's liveness check reads stream_inbound_time: each partition offered to an inlet is stamped,
    so no "Stream has not started processing" error is logged for the partitions the inlets consume."""
    consumer.app.inlets["samples"] = _Inlet()
    _fetched(monkeypatch, [_message("samples", 0), _message("samples", 0, partition=3), _message("x", 1)])
    before = time.monotonic()
    assert [m.offset async for _, m in consumer.getmany(timeout=1.0)] == [1]
    inbound = consumer.app.monitor.stream_inbound_time
    assert set(inbound) == {TP("samples", 0), TP("samples", 3)}
    assert all(before <= stamped <= time.monotonic() for stamped in inbound.values())


async def test_the_liveness_check_of_a_partition_counts_from_its_assignment(
    consumer: Any, monkeypatch: Any
) -> None:
    """A partition assigned by a rebalance minutes after the worker started is not checked (faust would
    log 'has not sent fetch request since start' before its first fetch) until faust's timeout has
    passed since the assignment; then faust's own check runs."""
    checked: list[TP] = []

    async def assigned(self: Any, assigned: set[TP], generation_id: int = 0) -> None:
        return None

    monkeypatch.setattr(faust_aiokafka.Consumer, "on_partitions_assigned", assigned)
    monkeypatch.setattr(
        faust_aiokafka.Consumer, "verify_event_path", lambda self, now, tp: checked.append(tp)
    )
    tp = TP("samples", 2)
    await consumer.on_partitions_assigned({tp}, 7)
    timeout = consumer.app.conf.stream_processing_timeout
    consumer.verify_event_path(consumer.assigned_at[tp] + timeout - 1, tp)
    assert checked == []
    consumer.verify_event_path(consumer.assigned_at[tp] + timeout, tp)
    consumer.verify_event_path(time.monotonic(), TP("samples", 9))  # not assigned by a rebalance seen here
    assert checked == [tp, TP("samples", 9)]


async def test_the_worker_consumer_fetches_processor_fetch_partition_bytes_a_partition(
    tmp_path: Path,
) -> None:
    """The aiokafka consumer faust builds for the worker asks for processor_fetch_partition_bytes of
    each partition a fetch (faust's default is 1 MiB, all decoded at once by a poll)."""
    update = {"processor_fetch_partition_bytes": 12345}
    settings = isolated_settings("hotpath", tmp_path).model_copy(update=update)
    app = create_app(settings, sink_factory=lambda: None, query_api=False).app
    thread: Any = cast(Any, app.consumer)._thread
    built = thread._create_worker_consumer(app.transport)
    try:
        assert built._max_partition_fetch_bytes == 12345
        assert built._max_poll_records is None  # a poll takes every partition's fetch, in step
    finally:
        await built.stop()
