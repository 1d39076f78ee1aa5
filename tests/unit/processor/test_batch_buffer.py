"""Row-bounded micro-batching: cut by rows or time, order kept, bounded prefetch, errors surface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streamer.processor.batch_buffer import BatchBuffer, batches


async def source(rows: list[int], gap_s: float = 0.0) -> AsyncIterator[int]:
    for n in rows:
        if gap_s:
            await asyncio.sleep(gap_s)
        yield n


def sized(n: int) -> tuple[int, int]:
    return n, n


async def test_batches_close_at_max_rows_and_keep_order() -> None:
    """Each batch closes as soon as it holds max_rows rows; every item appears once, in order."""
    rows = [400, 300, 500, 100, 100, 900, 50, 1]
    got = [b async for b in batches(source(rows), sized, max_rows=1000, max_s=5.0)]
    assert [x for b in got for x in b] == rows
    assert got == [[400, 300, 500], [100, 100, 900], [50, 1]]


async def test_partial_batch_is_flushed_after_max_s_while_the_source_is_idle() -> None:
    """A batch below max_rows is yielded after max_s even though no further event arrives."""
    gate = asyncio.Event()

    async def idle_after_two() -> AsyncIterator[int]:
        yield 1
        yield 2
        await gate.wait()
        yield 3

    it = batches(idle_after_two(), sized, max_rows=1000, max_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await anext(it) == [1, 2]
    assert loop.time() - started < 1.0
    gate.set()
    assert await anext(it) == [3]
    await it.aclose()


async def test_empty_records_still_count_as_one_row() -> None:
    """Items reporting zero rows count as one, so a stream of empty records still cuts batches."""
    got = [b async for b in batches(source([0] * 5), sized, max_rows=2, max_s=5.0)]
    assert got == [[0, 0], [0, 0], [0]]


async def test_prefetch_stops_after_one_full_buffer() -> None:
    """While the caller holds a batch, the feeder fills at most one more buffer and then waits."""
    pulled: list[int] = []

    async def counting() -> AsyncIterator[int]:
        for i in range(100):
            pulled.append(i)
            yield 10

    it = batches(counting(), sized, max_rows=30, max_s=5.0)
    first = await anext(it)
    await asyncio.sleep(0.05)  # the caller is "inserting": the feeder runs meanwhile
    assert first == [10, 10, 10]
    assert len(pulled) <= 3 + 3 + 1  # this batch, the next full one, one event waiting for room
    await it.aclose()


async def test_feeder_errors_are_raised_to_the_caller() -> None:
    """An exception in the source or in prepare ends the iteration with that exception."""

    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("broken source")

    with pytest.raises(RuntimeError, match="broken source"):
        async for _ in batches(failing(), sized, max_rows=10, max_s=0.05):
            pass


async def test_offer_is_refused_while_the_open_buffer_is_full_and_taken_again_after() -> None:
    """offer() prepares nothing while max_rows are waiting; once the caller takes them it succeeds."""
    prepared: list[int] = []

    def prepare(n: int) -> tuple[int, int]:
        prepared.append(n)
        return n, n

    buffer: BatchBuffer[int, int] = BatchBuffer(prepare, max_rows=10, max_s=5.0)
    assert buffer.offer(6) and buffer.offer(4)
    assert not buffer.offer(3) and prepared == [6, 4]
    room = asyncio.ensure_future(buffer.wait_room())
    await asyncio.sleep(0)
    assert not room.done()
    batches = buffer.batches()
    assert await anext(batches) == [6, 4]
    await asyncio.wait_for(room, 1)
    assert buffer.offer(3) and prepared == [6, 4, 3]
    buffer.end()
    assert [b async for b in batches] == [[3]]
