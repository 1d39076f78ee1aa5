"""Micro-batches of stream events bounded by ROWS (samples) and time, with no acking at all.

faust's ``take()`` counts events, not samples, and acks the whole buffer in a ``finally`` even when the
caller raised; ``noack_take()`` fixes the acking but still counts events and only yields on a timeout
when its buffer is non-empty, so a size-in-rows cap cannot be layered on it. A faust event here holds
anywhere from one to ~2,000 samples, so batches are cut by rows instead:

- a feeder task iterates ``stream.noack().events()`` (nothing is acked by faust), prepares each event
  (decode: the rows it carries) and appends it to the open buffer;
- ``batches()`` yields the buffer when it holds ``max_rows`` rows or every ``max_s`` seconds if it is
  not empty. The feeder keeps filling the next buffer while the caller inserts the previous one (decode
  overlaps the insert), and waits once that buffer is full, so at most two buffers are held.

The caller acks every event of a batch, in order, once the batch is inserted or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

E = TypeVar("E")
I = TypeVar("I")  # noqa: E741


class _Buffer(Generic[I]):
    __slots__ = ("items", "rows")

    def __init__(self) -> None:
        self.items: list[I] = []
        self.rows = 0


async def batches(
    events: AsyncIterator[E],
    prepare: Callable[[E], tuple[I, int]],
    *,
    max_rows: int,
    max_s: float,
) -> AsyncIterator[list[I]]:
    """Yield lists of prepared items, each closed at ``max_rows`` rows or ``max_s`` seconds.

    ``prepare(event)`` returns the item and the rows it counts for (at least 1 is assumed, so records
    without samples still make progress). The feeder's exceptions are raised here.
    """
    state: list[_Buffer[I]] = [_Buffer()]
    full = asyncio.Event()  # the open buffer reached max_rows
    room = asyncio.Event()  # the caller took the open buffer
    room.set()

    async def feed() -> None:
        async for event in events:
            while state[0].rows >= max_rows:
                room.clear()
                await room.wait()
            item, rows = prepare(event)
            buf = state[0]
            buf.items.append(item)
            buf.rows += max(rows, 1)
            if buf.rows >= max_rows:
                full.set()

    feeder: asyncio.Future[object] = asyncio.ensure_future(feed())
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(full, feeder), timeout=max_s)
            if feeder.done():
                feeder.result()  # re-raise the feeder's failure here
            buf = state[0]
            if buf.items:
                state[0] = _Buffer()
                full.clear()
                room.set()
                yield buf.items
            elif feeder.done():
                return
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder


async def _first(full: asyncio.Event, feeder: asyncio.Future[object]) -> None:
    """Return when the buffer is full or the feeder ended (normally or not)."""
    waiter: asyncio.Future[object] = asyncio.ensure_future(full.wait())
    pending: set[asyncio.Future[object]] = {waiter, feeder}
    try:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
