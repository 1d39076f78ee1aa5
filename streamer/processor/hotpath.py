"""faust's per-message work that the processor does without: its delivery path for ace.samples, four
asyncio tasks per message, and stats nobody reads.

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

2. Inlets.

For every message, faust's conductor then decodes it into an event, puts it in the agent's stream
queue, and the stream's iterator takes it out again, tracks it and hands it on; acking goes back
through the event, a reference count and the message. For ace.samples (records of ~60 samples when a
backfill publishes them) that was about 100 us a record, ~45 % of the event loop's CPU
(bench/processor.py, backfill shape: the loop's CPU went from 27 to 14 s, 138k to 191k samples/s).
A topic with an inlet in ``app.inlets`` (the processor's samples agent registers one) skips all of
it: ``InlineDispatchConsumer.getmany`` offers each of its messages to the inlet (``offer`` prepares it
into the pipeline's batch buffer, synchronously), marks it read and tracks it as faust's loop and
conductor would; the pipeline acks the message itself (``Consumer.ack``), through ``acks.AckGate``.
An inlet that is full (or not yet opened: the points table is still recovering) refuses the
message, and the fetch waits for room as a blocked delivery does: under faust's ``wait_first``, so a
rebalance suspending the flow, a stop or a crash ends the wait; the refused message and the rest of
the fetch are then not marked read, and are read again from the committed offset. Other topics
(``ace.sync_runs``) keep faust's path.

3. ``QuietMonitor``: faust's default Monitor sensor updates counters, deques and timestamps four times
per message (in, stream in, stream out, out) for faust's own stats views, which nothing here reads: the
processor's figures are streamer.metrics, on /metrics. The other sensor hooks (tables, commits,
rebalances) stay as they are.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, ClassVar, Protocol

from faust.sensors.monitor import Monitor
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

# Messages offered in a row before the fetch loop lets other tasks run (faust's loop uses 100).
YIELD_EVERY = 100


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


class Inlet(Protocol):
    """Where the fetch loop hands a topic's messages directly (``take.BatchBuffer`` is one)."""

    def offer(self, message: Any) -> bool: ...

    async def wait_room(self) -> None: ...


class InlineDispatchConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetch loop delivers a message inline when that cannot block,
    and hands the messages of topics with an inlet straight to it (see the module docstring)."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """faust's messages, less those of topics with an inlet: those are offered to the inlet."""
        inlets, read_offset = getattr(self.app, "inlets", None) or {}, self._read_offset
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
                await self._add_gap(tp, last + 1, message.offset)  # so commits can pass it, as faust's
            if not inlet.offer(message) and not await self._offer_when_room(inlet, message):
                return  # the flow was suspended or the worker stops: re-read from the commit
            self.track_message(message)
            read_offset[tp] = message.offset
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)  # let the pipeline and timers run during a long fetch

    async def _offer_when_room(self, inlet: Inlet, message: Any) -> bool:
        """Offer again each time the inlet has room; False once the flow is suspended or we stop."""
        while True:
            if not self._inline_allowed():
                return False
            waited = await super().wait_first(inlet.wait_room(), self.suspend_flow.wait())
            if waited.stopped or self.suspend_flow.is_set():
                return False
            if inlet.offer(message):
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
