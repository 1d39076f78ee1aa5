"""read_ahead: pages come out in order, the next one is fetched while the current one is handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from streamer.producer.pages import read_ahead


async def test_yields_in_order_and_fetches_one_ahead() -> None:
    """Item n+1 is requested before the consumer finishes item n, never two ahead."""
    log: list[str] = []

    async def source() -> AsyncIterator[int]:
        for i in range(3):
            log.append(f"fetch {i}")
            await asyncio.sleep(0)
            yield i

    got = []
    async with aclosing(read_ahead(source())) as pages:
        async for page in pages:
            await asyncio.sleep(0.01)  # the consumer works; the fetch of the next page runs meanwhile
            log.append(f"done {page}")
            got.append(page)
    assert got == [0, 1, 2]
    assert log == ["fetch 0", "fetch 1", "done 0", "fetch 2", "done 1", "done 2"]


async def test_source_error_surfaces_after_earlier_pages() -> None:
    """An error of the source is raised to the consumer after the pages before it."""

    async def source() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("page 2 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        async for page in read_ahead(source()):
            got.append(page)
    assert got == [1]


async def test_closing_early_cancels_the_pending_fetch_and_closes_source() -> None:
    """Leaving the loop early cancels the fetch in flight and closes the source generator."""
    closed = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(3600)
            yield 2
        finally:
            closed.set()

    async with aclosing(read_ahead(source())) as pages:
        async for page in pages:
            assert page == 1
            break
    assert closed.is_set()
