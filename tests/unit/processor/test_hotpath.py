"""faust's consumer with inline dispatch: same results as faust's wait_first, no tasks when nothing blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mode import Service

from streamer.processor.app import create_app
from streamer.processor.hotpath import Continued, InlineDispatchConsumer, QuietMonitor
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
    assert isinstance(app.consumer, InlineDispatchConsumer)
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
