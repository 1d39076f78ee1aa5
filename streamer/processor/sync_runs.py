"""``ace.sync_runs`` → ClickHouse ``sync_runs``, with the samples' tail (``insert_batches.settle``).

Low volume (one record per producer window), so records are validated with the pydantic model. The
insert is idempotent by ``sync_id`` (ReplacingMergeTree), so a replay after a crash is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from streamer.errors import RecordDecodeError
from streamer.models import SyncRun
from streamer.processor.batch_items import Item, SourceOf, dead_letter
from streamer.processor.dlq import STAGE_DECODE, DeadLetter, DlqWriter
from streamer.processor.insert_batches import batch_token, retry_transient, settle
from streamer.settings import Settings


class SyncRunsSink(Protocol):
    def insert_sync_runs(self, runs: list[SyncRun]) -> Any: ...


@dataclass(slots=True)
class RunPart(SourceOf):
    item: Item
    run: SyncRun


def decode_sync_run(value: bytes | None) -> SyncRun:
    """Validate an ``ace.sync_runs`` value; ``RecordDecodeError`` if it is not a ``SyncRun``."""
    if value is None:
        raise RecordDecodeError("record value is null")
    try:
        return SyncRun.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        raise RecordDecodeError(f"not a SyncRun: {where}: {first.get('msg')}") from None


class SyncRunsPipeline:
    """Loads batches of sync runs; poison records go to the DLQ; every event acked in order."""

    def __init__(
        self,
        settings: Settings,
        sink: SyncRunsSink,
        dlq: DlqWriter,
        ack: Callable[[Any], Awaitable[Any]],
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._dlq = dlq
        self._ack = ack

    async def handle(self, items: Sequence[Item]) -> int:
        """Insert the runs of ``items``; returns how many were inserted."""
        token = batch_token("sync_runs", items)
        letters: list[DeadLetter] = []
        parts: list[RunPart] = []
        for item in items:
            try:
                parts.append(RunPart(item, decode_sync_run(item.value)))
            except RecordDecodeError as exc:
                letters.append(dead_letter(item, exc, STAGE_DECODE, token))
        failed, _ = await settle(
            items, parts, self._insert, letters=letters, token=token, dlq=self._dlq, ack=self._ack
        )
        return len(parts) - len(failed)

    async def _insert(self, parts: Sequence[RunPart]) -> None:
        runs = [part.run for part in parts]
        await retry_transient(
            lambda: asyncio.to_thread(self._sink.insert_sync_runs, runs),
            max_backoff_s=self._settings.sink_retry_max_backoff_s,
            what=f"insert {len(runs)} sync runs",
        )
