"""faust's per-message work that the processor does without: four asyncio tasks, and stats nobody reads.

1. Inline dispatch.

faust's fetch loop hands every polled message to the conductor through
``wait_first(callback(message), suspend_flow.wait())``, so that a delivery blocked on a full stream
buffer is abandoned when a rebalance suspends the flow, or the worker stops or crashes. ``wait_first``
wraps each argument, and the consumer's stopped and crashed events, in a task of its own and runs
``asyncio.wait`` over the four: about 65 us a message here (bench/processor.py, backfill shape: the
event loop's CPU went from 49.4 to 41.4 s for 121k messages without them), the largest single cost
py-spy found in the processor's event loop.

A delivery almost never blocks: the conductor decodes the message and puts it in the stream's queue
without waiting. ``InlineDispatchConsumer.wait_first`` therefore first steps the callback in place;
if it completes without yielding, that is the result ``wait_first`` would have returned. If it yields
(it waits for queue room, flow control or the conductor's lock), the coroutine, suspended where it
is, goes through faust's own ``wait_first``, so the blocking case keeps faust's behaviour exactly.
When the worker is stopping, crashed or its flow suspended, faust's path is taken from the start.

2. ``QuietMonitor``: faust's default Monitor sensor updates counters, deques and timestamps four times
per message (in, stream in, stream out, out) for faust's own stats views, which nothing here reads: the
processor's figures are streamer.metrics, on /metrics. The other sensor hooks (tables, commits,
rebalances) stay as they are.
"""

from __future__ import annotations

import inspect
from collections.abc import Coroutine, Generator
from typing import Any, ClassVar

from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults


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


class InlineDispatchConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetch loop delivers a message inline when that cannot block."""

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

    def _inline_allowed(self) -> bool:
        return not (self.suspend_flow.is_set() or self._stopped.is_set() or self._crashed.is_set())


class InlineDispatchTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with ``InlineDispatchConsumer``."""

    Consumer: ClassVar[type[Any]] = InlineDispatchConsumer


def _close(coros: tuple[Any, ...]) -> None:
    """Close the other waitables' coroutines, never awaited now (no 'never awaited' warning)."""
    for coro in coros:
        if inspect.iscoroutine(coro):
            coro.close()


class QuietMonitor(Monitor):
    """faust's Monitor without its per-message bookkeeping (see the module docstring)."""

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
