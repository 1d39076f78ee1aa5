"""Micro-batches of records bounded by ROWS (samples) and time, with no acking at all.

faust's ``take()`` counts events, not samples, and acks the whole buffer in a ``finally`` even when the
caller raised; ``noack_take()`` fixes the acking but still counts events and only yields on a timeout
when its buffer is non-empty, so a size-in-rows cap cannot be layered on it. A record here holds
anywhere from one to ~2,000 samples, so batches are cut by rows instead.

``BatchBuffer`` is the buffer between whoever delivers records and the pipeline:

- ``offer(record)`` prepares it (decode: the rows it carries) and appends it to the open buffer, or
  refuses it (``False``) while that buffer is full; the deliverer then awaits ``wait_room()`` and
  offers again. It is synchronous, so a delivery that finds room costs no task switch: the
  consumer's fetch loop calls it directly for every ``ace.samples`` message (``faust_seam``).
- ``batches()`` yields the open buffer when it holds ``max_rows`` rows, or every ``max_s`` seconds if
  it is not empty. The deliverer fills the next buffer while the caller inserts the previous one
  (decode overlaps the insert), and is refused once that buffer is full: at most two are held.

``BufferInlet`` is the consumer's way into one (a ``port.Inlet``): it refuses every delivery until the
pipeline opens it with its buffer (the samples pipeline, once the points table is recovered).

``batches(events, prepare, ...)`` is the same over an async iterator: a feeder task offers each
event. The caller acks every record of a batch, in order, once the batch is inserted or
dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from streamer.processor.port import Delivery

E = TypeVar("E")
I = TypeVar("I")  # noqa: E741


class _Buffer(Generic[I]):
    __slots__ = ("items", "rows")

    def __init__(self) -> None:
        self.items: list[I] = []
        self.rows = 0


class BatchBuffer(Generic[E, I]):
    """Prepared records in buffers closed at ``max_rows`` rows or ``max_s`` seconds (module docstring)."""

    def __init__(self, prepare: Callable[[E], tuple[I, int]], *, max_rows: int, max_s: float) -> None:
        self._prepare = prepare
        self._max_rows = max_rows
        self._max_s = max_s
        self._open: _Buffer[I] = _Buffer()
        self._full = asyncio.Event()  # the open buffer reached max_rows
        self._room = asyncio.Event()  # the caller took the open buffer
        self._room.set()
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._error: BaseException | None = None

    def offer(self, record: E) -> bool:
        """Prepare ``record`` into the open buffer; ``False`` (nothing done) while that buffer is full.

        ``prepare(record)`` returns the item and the rows it counts for (at least 1 is assumed, so
        records without samples still make progress).
        """
        buf = self._open
        if buf.rows >= self._max_rows:
            self._room.clear()
            return False
        item, rows = self._prepare(record)
        buf.items.append(item)
        buf.rows += max(rows, 1)
        if buf.rows >= self._max_rows:
            self._full.set()
        return True

    async def wait_room(self) -> None:
        """Return once the caller took the full buffer (an offer can then succeed)."""
        await self._room.wait()

    def end(self, error: BaseException | None = None) -> None:
        """No more records: ``batches()`` yields what is left, then ends (or raises ``error``)."""
        if not self._ended.done():
            self._error = error
            self._ended.set_result(None)

    async def batches(self) -> AsyncIterator[list[I]]:
        """Yield each buffer once full, or after ``max_s`` if not empty; end after ``end()``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full_or_ended(), timeout=self._max_s)
            if self._error is not None:
                raise self._error  # the deliverer's failure, raised here
            buf = self._open
            if buf.items:
                self._open = _Buffer()
                self._full.clear()
                self._room.set()
                yield buf.items
            elif self._ended.done():
                return

    async def _full_or_ended(self) -> None:
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self._full.wait())
        either: set[asyncio.Future[Any]] = {waiter, self._ended}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()


class BufferInlet:
    """An inlet that refuses every delivery until ``open(buffer)``, then offers them to ``buffer``."""

    def __init__(self) -> None:
        self._buffer: BatchBuffer[Delivery, Any] | None = None
        self._opened = asyncio.Event()

    def open(self, buffer: BatchBuffer[Delivery, Any]) -> None:
        self._buffer = buffer
        self._opened.set()

    def offer(self, delivery: Delivery) -> bool:
        return self._buffer is not None and self._buffer.offer(delivery)

    async def wait_room(self) -> None:
        await self._opened.wait()
        assert self._buffer is not None
        await self._buffer.wait_room()


async def batches(
    events: AsyncIterator[E],
    prepare: Callable[[E], tuple[I, int]],
    *,
    max_rows: int,
    max_s: float,
) -> AsyncGenerator[list[I]]:
    """Yield lists of prepared items, each closed at ``max_rows`` rows or ``max_s`` seconds.

    A feeder task offers every event of ``events`` to a ``BatchBuffer``; its exceptions are raised here.
    """
    buffer: BatchBuffer[E, I] = BatchBuffer(prepare, max_rows=max_rows, max_s=max_s)

    async def feed() -> None:
        try:
            async for event in events:
                while not buffer.offer(event):
                    await buffer.wait_room()
        except Exception as exc:
            buffer.end(exc)
            raise
        buffer.end()

    feeder: asyncio.Future[None] = asyncio.ensure_future(feed())
    try:
        async for items in buffer.batches():
            yield items
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder
