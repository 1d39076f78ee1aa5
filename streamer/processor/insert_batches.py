"""Loading into the sink: retry transient failures forever, bisect permanent ones down to records;
``settle``: the one tail of every batch (insert, bisect, dead-letter, ack).

- ``SinkTransientError`` (ClickHouse down, timeout, too many parts, table detached...): back off
  (doubling, capped at ``settings.sink_retry_max_backoff_s``) and retry the SAME rows with the SAME
  deduplication token, forever. The agent simply awaits, so consumption pauses; nothing is dropped and
  nothing reaches the DLQ because of an outage.
- ``SinkPermanentError`` (ClickHouse rejected the rows): split the batch in halves by source record and
  load each half, recursively; what still fails alone is a poison record, returned for the DLQ.

The deduplication token is derived from the source offsets of the records loaded, their content (a
crc32 of each record's value) and the rows each gave, so an identical retry (same records, same rows)
is dropped by ClickHouse's insert deduplication window, and nothing else is: a recreated topic (a wiped
broker, a new cluster) reuses offsets with other records, and a record judged again later may give
other rows (a future sample no longer in the future). Offsets alone made such a batch look like a
retry, and ClickHouse dropped it silently. The topic's own id would do for the first case, but
aiokafka 0.14 speaks Metadata up to v5 and topic ids came with v10.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from streamer.errors import SinkPermanentError, SinkTransientError
from streamer.processor.batch_items import Item, dead_letter
from streamer.processor.dlq import STAGE_INSERT, DeadLetter, DlqWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")
Q = TypeVar("Q", bound="HasItem")

MIN_BACKOFF_S = 0.05


class HasSource(Protocol):
    @property
    def source_topic(self) -> str: ...
    @property
    def source_partition(self) -> int: ...
    @property
    def source_offset(self) -> int: ...
    @property
    def source_crc(self) -> int: ...
    @property
    def source_rows(self) -> int: ...


class HasItem(HasSource, Protocol):
    @property
    def item(self) -> Item: ...


def batch_token(kind: str, parts: Iterable[HasSource]) -> str:
    """sha1 of ``kind|topic:partition:first-last+...:content,...``: the parts' source offsets (sorted,
    runs) and, per partition, a crc32 chained over each record's content crc and rows in offset order."""
    by_tp: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    for part in parts:
        key = (part.source_topic, part.source_partition)
        by_tp.setdefault(key, []).append((part.source_offset, part.source_crc, part.source_rows))
    chunks: list[str] = []
    for (topic, partition), sources in sorted(by_tp.items()):
        sources.sort()
        runs: list[str] = []
        start = prev = sources[0][0]
        for offset, _, _ in sources[1:]:
            if offset != prev + 1:
                runs.append(f"{start}-{prev}")
                start = offset
            prev = offset
        runs.append(f"{start}-{prev}")
        content = zlib.crc32(b"".join(struct.pack("<Iq", crc, rows) for _, crc, rows in sources))
        chunks.append(f"{topic}:{partition}:{'+'.join(runs)}:{content:08x}")
    return hashlib.sha1(f"{kind}|{','.join(chunks)}".encode()).hexdigest()


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    max_backoff_s: float,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``call()`` until it does not raise ``SinkTransientError``; other errors propagate."""
    delay = MIN_BACKOFF_S
    failures = 0
    started = time.monotonic()
    while True:
        try:
            result = await call()
        except SinkTransientError as exc:
            failures += 1
            if failures == 1 or failures % 10 == 0:
                log.warning("%s: transient failure #%d, retrying in %.2fs: %s", what, failures, delay, exc)
            await sleep(delay)
            delay = min(delay * 2, max_backoff_s)
            continue
        if failures:
            log.info("%s: succeeded after %d failures (%.1fs)", what, failures, time.monotonic() - started)
        return result


async def bisect_load(
    parts: Sequence[P],
    insert: Callable[[Sequence[P]], Awaitable[None]],
    failed_with: SinkPermanentError | None = None,
) -> list[tuple[P, SinkPermanentError]]:
    """Insert ``parts``; on a permanent error split in halves until the poison parts are alone.

    Returns the parts that failed on their own, with their error; every other part was inserted.
    ``insert`` must already retry transient errors. ``failed_with``: the caller already tried all of
    ``parts`` at once and got this error (start splitting).
    """
    if not parts:
        return []
    try:
        if failed_with is not None:
            raise failed_with
        await insert(parts)
        return []
    except SinkPermanentError as exc:
        if len(parts) == 1:
            return [(parts[0], exc)]
        log.warning("permanent insert error for %d records, bisecting: %s", len(parts), exc)
    middle = len(parts) // 2
    failed = await bisect_load(parts[:middle], insert)
    failed += await bisect_load(parts[middle:], insert)
    return failed


async def settle(
    items: Sequence[Item],
    parts: Sequence[Q],
    insert: Callable[[Sequence[Q]], Awaitable[None]],
    *,
    letters: Sequence[DeadLetter],
    token: str,
    dlq: DlqWriter,
    ack: Callable[[Any], Awaitable[Any]] | None,
    insert_all: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[tuple[Q, SinkPermanentError]], int]:
    """The tail of a batch: insert ``parts`` (``insert_all()`` if given, else ``insert(parts)``),
    bisect the poison ones out, deliver ``letters`` and theirs to the DLQ durably, then ack every
    item in order (handles; ``ack=None``: the caller acks them itself, later). Returns the poison
    parts and the dead letters sent."""
    failed: list[tuple[Q, SinkPermanentError]] = []
    if parts:
        try:
            await (insert(parts) if insert_all is None else insert_all())
        except SinkPermanentError as exc:
            failed = await bisect_load(parts, insert, failed_with=exc)
    sent = [*letters, *(dead_letter(part.item, exc, STAGE_INSERT, token) for part, exc in failed)]
    await dlq.send(sent)
    if ack is not None:
        for item in items:
            await ack(item.handle)
    return failed, len(sent)
