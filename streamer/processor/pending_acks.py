"""Acks held until the rollups of every key their records touched are recomputed: one recompute for
several batches.

The sink's rollup recompute (``streamer.sink.rollups``) rereads ``timeseries_raw FINAL`` for the
(site, point, hour) keys of the rows inserted. Successive batches of a backfill touch the same hours
again (interleaved pages: every point of an hour comes in several batches), so recomputing after
every batch reread those hours each time. The samples pipeline therefore inserts each batch's raw
rows (``Sink.store_samples``) and hands its deliveries here, in order, with the keys its rows
touched; ``flush`` recomputes the union of the keys once, then acks every held delivery in order.

The one invariant: a record's offset is acked (so may be committed) only after the rollups of every
key it touched were recomputed after its rows were stored. ``flush`` snapshots what is held, then
recomputes, then acks that snapshot; what is held meanwhile waits for the next flush (flushes run
one at a time, in order, so acks stay in order). A crash with acks held replays their records: the
insert is dropped by its token or collapses by key, and the replay's own flush recomputes. A failed
recompute is transient (``recompute`` retries it): nothing is acked until it succeeds. A delivery of
an older consumer generation is not acked by the ack (``acks.AckGate``): its partition is re-read by
its new owner, which recomputes for itself.

The pipeline flushes when the held rows reach ``max_rows``, once the oldest held delivery has
waited ``max_s`` (so also when the input goes idle), after a batch that did not fill up (no backlog:
live, each batch's commit then waits for its own recompute only), at the end of its input, and at
once (``urgent``)
while the consumer waits for every delivery to be acked: before the worker stops, and before a
rebalance revokes partitions (``faust_seam.on_drain``: faust's ``wait_empty``). Only the
deliveries (the consumer's handles; their bytes went to the batch, ``batch_items.item_of``) and the
keys are held, never a record's bytes or a batch's decoded rows or columns: memory is bounded by
``max_rows``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from streamer.sink.rollups import Touched

Key = tuple[str, str, int]


class PendingAcks:
    """Deliveries waiting for one recompute of the keys their rows touched (module docstring)."""

    def __init__(
        self,
        recompute: Callable[[Touched], Awaitable[None]],
        release: Callable[[list[Any], dict[Any, int]], Awaitable[None]],
        *,
        max_rows: int,
        max_s: float,
    ) -> None:
        self._recompute = recompute
        self._release = release  # acks a list of held deliveries in order, then records their marks
        self.max_rows = max_rows
        self.max_s = max_s
        self._handles: list[Any] = []
        self._marks: dict[Any, int] = {}  # the last offset held per partition (the pipeline's lag)
        self._keys: set[Key] = set()
        self._rows = 0
        self._since: float | None = None  # monotonic time the oldest held delivery was held
        self._lock = asyncio.Lock()
        self.urgent = False  # the consumer waits for every ack (a stop, a rebalance): flush at once

    def hold(self, handles: Sequence[Any], keys: Iterable[Key], rows: int, marks: dict[Any, int]) -> None:
        """Hold ``handles`` (acked in this order by a later flush), the ``keys`` of their rows and
        their last offsets by partition (``marks``). No object per delivery is made: objects that
        live until the flush would set off the cyclic GC, which rescans the batches in flight."""
        if not handles:
            return
        if self._since is None:
            self._since = time.monotonic()
        self._handles += handles
        self._keys.update(keys)
        self._rows += rows
        self._marks.update(marks)

    @property
    def held(self) -> int:
        """How many deliveries are held."""
        return len(self._handles)

    def due_in(self) -> float | None:
        """Seconds until the oldest held delivery reaches ``max_s`` (0 if due now); None if none held."""
        if self._since is None:
            return None
        if self._rows >= self.max_rows or self.urgent:
            return 0.0
        return max(0.0, self._since + self.max_s - time.monotonic())

    async def flush(self) -> None:
        """Recompute the held keys' rollups once, then ack every held delivery in order."""
        async with self._lock:
            handles, keys, marks = self._handles, self._keys, self._marks
            if not handles:
                return
            self._handles, self._keys, self._marks, self._rows, self._since = [], set(), {}, 0, None
            if keys:
                await self._recompute(Touched(frozenset(keys)))
            await self._release(handles, marks)
