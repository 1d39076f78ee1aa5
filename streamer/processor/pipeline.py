"""One micro-batch of ``ace.samples`` records, from deliveries to acked offsets.

``handle(items)``:
1. catch the points table up to the end offsets read now (every points update published before these
   samples is then known), and upsert the changed points into ClickHouse;
2. judge each record (not configured / disabled → dropped and counted), normalise it (rejects counted
   by reason, one sample at a time); a record that breaks the schema becomes a dead letter, and so do
   a record's samples dated after now + max_future_s (a letter holding only those samples);
3. insert the raw rows (transient errors: retry forever; permanent: bisect by record, poison → DLQ);
4. deliver the dead letters durably;
5. hold EVERY delivery, dropped ones included, in order, with the (site, point, hour) keys its batch
   touched (``pending_acks``); a flush recomputes the rollups of the held batches' keys once, then
   acks what it held, in order. Only then may their offsets be committed.

3 and 4 are ``insert_batches.settle``, the tail ``ace.sync_runs`` batches share (they are acked at
once: no rollups). ``run`` flushes when the held rows reach ``rollup_flush_rows``, when the oldest
held delivery has waited ``rollup_flush_s`` (also when no batch comes), after a batch that did not
fill up (``batch_max_rows``: the input has no backlog, so there is nothing to share a recompute with
and the commit should not wait), at the end of its input and after every load while the consumer
waits for every ack (``drain``: a stop, a rebalance); ``handle`` flushes before it returns.

A crash anywhere before the flush's acks leaves the offsets uncommitted: the batches are consumed
again after the restart, re-inserting rows is harmless (ReplacingMergeTree key, and the deduplication
token for an identical retry), and the replay's flush recomputes their rollups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from streamer.errors import RecordDecodeError, SinkPermanentError
from streamer.metrics import FRESHNESS_SECONDS, SAMPLES_CONSUMED, SAMPLES_DROPPED, SAMPLES_REJECTED
from streamer.processor.batch_items import (
    BatchOutcome,
    Item,
    Part,
    Staged,
    dead_letter,
    future_letter,
    runs,
)
from streamer.processor.dlq import STAGE_DECODE, DeadLetter, DlqWriter
from streamer.processor.insert_batches import batch_token, retry_transient, settle
from streamer.processor.normalise import RawRecord, decode_samples_record, normalise_samples
from streamer.processor.pending_acks import PendingAcks
from streamer.processor.points_table import PointsTable
from streamer.settings import Settings
from streamer.sink.native import Run
from streamer.sink.rollups import Touched, touched_runs
from streamer.sink.rows import PointRow
from streamer.times import TimeCache

log = logging.getLogger(__name__)


class SamplesSink(Protocol):
    """The part of ``streamer.sink.writer.Sink`` the samples pipeline uses (sync: run in a thread)."""

    def store_samples(self, runs: Sequence[Run], token: str) -> Any: ...

    def recompute_rollups(self, touched: Touched) -> Any: ...

    def insert_points(self, rows: list[PointRow]) -> Any: ...


class SamplesPipeline:
    """Judges, normalises, loads and acks batches of ``ace.samples`` records (see module docstring)."""

    def __init__(
        self,
        settings: Settings,
        sink: SamplesSink,
        table: PointsTable,
        dlq: DlqWriter,
        ack: Callable[[Any], Awaitable[Any]],
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._table = table
        self._dlq = dlq
        self._ack = ack
        self._cache = TimeCache()
        self._points_lock = asyncio.Lock()
        self.acked: dict[tuple[str, int], int] = {}  # last acked offset per partition (for lag)
        self.pending = PendingAcks(
            self._recompute,
            self._release,
            max_rows=settings.rollup_flush_rows,
            max_s=settings.rollup_flush_s,
        )

    def prepare(self, item: Item) -> tuple[Item, int]:
        """Decode a polled record and, if its point looks collected now, normalise it; rows it holds.

        Runs in the feeder at poll time, so it overlaps the previous batch's insert. The verdict is
        only a guess: ``handle`` judges again after catching the points table up, and normalises
        then what was skipped here.
        """
        try:
            record = item.record = decode_samples_record(item.value)
        except RecordDecodeError as exc:
            item.error = exc
            return item, 1
        if self._table.judge(record.site, record.point) is None:
            self._normalise(item, record)
        # The decoded pairs (a small list each) would stay alive until the batch is inserted, and
        # every young-generation GC pass would rescan them: a sixth of the event loop's CPU. Those of
        # a point that looks dropped go too: if the batch's verdict differs, they are decoded again.
        item.record = record.release()
        return item, record.count

    def _normalise(self, item: Item, record: RawRecord) -> None:
        item.max_ms = time.time_ns() // 1_000_000 + self._settings.max_future_s * 1000
        item.normalised = normalise_samples(record.samples, self._cache, item.max_ms)

    async def refresh_points(self) -> None:
        """Catch the points table up and upsert changed points (also run on a timer when idle)."""
        async with self._points_lock:
            await self._table.catch_up(self.insert_points)
            rows = self._table.take_rows()
            if rows:
                await self.insert_points(rows)

    async def insert_points(self, rows: list[PointRow]) -> None:
        """Upsert points rows into ClickHouse (transient errors retried)."""
        await insert_points(self._settings, self._sink, rows)

    async def handle(self, items: Sequence[Item]) -> BatchOutcome:
        """Process one batch; returns only after every item is loaded or dead-lettered, and acked."""
        outcome = await self.load(await self.stage(items))
        await self.pending.flush()
        return outcome

    async def run(self, batches: AsyncIterator[list[Item]]) -> None:
        """Handle every batch, staging batch N+1 while batch N is being inserted.

        Loads run one at a time and in order, and flushes ack what they hold in order, so events are
        still acked in order; a failed load raises here (at the latest when the next batch is staged).
        While no batch comes, held acks are flushed once due (``pending_acks``).
        """
        loading: asyncio.Future[BatchOutcome] | None = None
        upcoming: asyncio.Future[list[Item]] = asyncio.ensure_future(anext(batches))
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {upcoming} if loading is None else {upcoming, loading}
                await asyncio.wait(waiting, timeout=self.pending.due_in(), return_when=FIRST_COMPLETED)
                if loading is not None and loading.done():
                    loading.result()  # a failed load raises here
                    loading = None
                if not upcoming.done():  # no batch yet: flush what is held once it is due
                    if self.pending.due_in() == 0.0:
                        await self.pending.flush()
                    continue
                try:
                    items = upcoming.result()
                except StopAsyncIteration:
                    break
                upcoming = asyncio.ensure_future(anext(batches))
                staged = await self.stage(items)
                if loading is not None:
                    await loading
                loading = asyncio.ensure_future(self.load(staged))
            if loading is not None:
                await loading
            await self.pending.flush()
        finally:
            for task in (loading, upcoming):
                if task is not None and not task.done():
                    task.cancel()

    async def flush_pending(self) -> None:
        """Recompute the rollups of what is held and ack it."""
        await self.pending.flush()

    async def drain(self) -> None:
        """The consumer waits for every ack (a stop, a rebalance): flush now, and after every load
        until ``drained``."""
        self.pending.urgent = True
        await self.pending.flush()

    def drained(self) -> None:
        """The consumer's wait for every ack is over: flush by the bounds again."""
        self.pending.urgent = False

    async def stage(self, items: Sequence[Item]) -> Staged:
        """Catch the points table up, judge and normalise, list the insert's runs (a record's rows each)."""
        started = time.perf_counter()
        await self.refresh_points()
        staged = Staged(items, BatchOutcome(records=len(items)), batch_token("samples", items), started)
        staged.parts = self._judge_and_normalise(items, staged.outcome, staged.letters, staged.token)
        staged.runs = runs(staged.parts)
        staged.keys = touched_runs((part.site, part.point, part.ts_ms, part.hour) for part in staged.parts)
        return staged

    async def load(self, staged: Staged) -> BatchOutcome:
        """Insert (bisecting poison records out), dead-letter, then hold every event in order until a
        flush has recomputed the rollups of the batch's keys (at once if the held rows are due)."""
        parts, outcome = staged.parts, staged.outcome
        failed, outcome.dead_letters = await settle(
            staged.items,
            parts,
            self._insert,
            letters=staged.letters,
            token=staged.token,
            dlq=self._dlq,
            ack=None,
            insert_all=lambda: self._insert(parts, staged.runs),
        )
        poison = {id(part) for part, _ in failed}
        outcome.inserted = sum(len(p.ts_ms) for p in parts if id(p) not in poison)
        marks: dict[tuple[str, int], int] = {}
        for item in staged.items:
            marks[(item.source_topic, item.source_partition)] = item.source_offset
        self.pending.hold([item.handle for item in staged.items], staged.keys, outcome.inserted, marks)
        if self.pending.due_in() == 0.0 or outcome.samples < self._settings.batch_max_rows:
            await self.pending.flush()
        _record_metrics(outcome)
        log.debug(
            "batch: %d records, %d samples, %d inserted, %d dead letters in %.3fs",
            outcome.records,
            outcome.samples,
            outcome.inserted,
            outcome.dead_letters,
            time.perf_counter() - staged.started,
        )
        return outcome

    def _judge_and_normalise(
        self, items: Sequence[Item], outcome: BatchOutcome, letters: list[DeadLetter], token: str
    ) -> list[Part]:
        parts: list[Part] = []
        dropped = outcome.dropped
        rejected = outcome.rejected
        judge = self._table.judge
        for item in items:
            record = item.record
            if record is None:
                error = item.error or RecordDecodeError("record was not decoded")
                letters.append(dead_letter(item, error, STAGE_DECODE, token))
                continue
            outcome.samples += record.count
            reason = judge(record.site, record.point)
            if reason is not None:
                dropped[reason] = dropped.get(reason, 0) + record.count
                continue
            if item.normalised is None:
                if record.count and not record.samples:  # released at poll time as dropped
                    record = decode_samples_record(item.value)
                self._normalise(item, record)
                item.record = record.release()
            norm = item.normalised
            assert norm is not None  # set by _normalise
            for why, count in norm.rejected.items():
                rejected[why] = rejected.get(why, 0) + count
            if norm.future:
                letters.append(future_letter(item, record, norm.future, item.max_ms, token))
            if norm.ts_ms:
                site, point = record.site, record.point
                parts.append(Part(item, site, point, norm.ts_ms, norm.values, norm.hour, norm.newest))
        return parts

    async def _release(self, handles: list[Any], marks: dict[tuple[str, int], int]) -> None:
        ack = self._ack
        for handle in handles:
            await ack(handle)
        self.acked.update(marks)

    async def _recompute(self, touched: Touched) -> None:
        await retry_transient(
            lambda: asyncio.to_thread(self._sink.recompute_rollups, touched),
            max_backoff_s=self._settings.sink_retry_max_backoff_s,
            what=f"rollup recompute of {len(touched.keys)} keys",
        )

    async def _insert(self, parts: Sequence[Part], batch: list[Run] | None = None) -> None:
        batch = runs(parts) if batch is None else batch
        token = batch_token("samples", parts)
        await retry_transient(
            lambda: asyncio.to_thread(self._sink.store_samples, batch, token),
            max_backoff_s=self._settings.sink_retry_max_backoff_s,
            what=f"insert {sum(len(p.ts_ms) for p in parts)} samples",
        )
        for age_s in freshness_seconds(parts, time.time() * 1000):
            FRESHNESS_SECONDS.observe(age_s)


async def insert_points(settings: Settings, sink: SamplesSink, rows: list[PointRow]) -> None:
    """Upsert points rows (transient errors retried); a permanent refusal is logged, not raised."""
    try:
        await retry_transient(
            lambda: asyncio.to_thread(sink.insert_points, rows),
            max_backoff_s=settings.sink_retry_max_backoff_s,
            what=f"insert {len(rows)} points",
        )
    except SinkPermanentError as exc:
        # Metadata only: judging uses the in-memory table, samples still load.
        log.error("ClickHouse refused %d points rows (not retried): %s", len(rows), exc)


def freshness_seconds(parts: Sequence[Part], now_ms: float) -> list[float]:
    """Per record, how long ago its newest sample was taken, as it becomes visible in ClickHouse."""
    return [
        max(0.0, (now_ms - (max(part.ts_ms) if part.newest is None else part.newest)) / 1000)
        for part in parts
        if part.ts_ms
    ]


def _record_metrics(outcome: BatchOutcome) -> None:
    SAMPLES_CONSUMED.inc(outcome.samples)
    for reason, count in outcome.dropped.items():
        SAMPLES_DROPPED.labels(reason=reason).inc(count)
    for reason, count in outcome.rejected.items():
        SAMPLES_REJECTED.labels(reason=reason).inc(count)
