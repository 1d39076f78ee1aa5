"""Reading the next page while the current one is grouped and published.

The API (or simulator) builds and sends a page while the producer works on the previous one, so the two
overlap instead of taking turns. Exactly one page is read ahead: at most two are held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable
from typing import TypeVar

T = TypeVar("T")


async def read_ahead(pages: AsyncIterable[T]) -> AsyncGenerator[T, None]:
    """Yield ``pages`` in order, fetching item n+1 while the caller handles item n."""
    source = aiter(pages)
    pending: asyncio.Task[T] = asyncio.ensure_future(anext(source))
    try:
        while True:
            try:
                page = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(source))
            yield page
            del page
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
