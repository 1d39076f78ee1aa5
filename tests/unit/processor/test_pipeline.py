"""One samples batch: judged, normalised, loaded or dead-lettered, and only then acked, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from streamer.errors import DlqWriteError, SinkPermanentError, SinkTransientError
from streamer.processor import insert_batches
from streamer.processor.batch_items import BatchOutcome, Item, item_of
from streamer.processor.dlq import DlqWriter
from streamer.processor.pipeline import SamplesPipeline
from streamer.processor.points_table import FlushRows, PointsTable
from streamer.processor.port import Delivery
from streamer.settings import Settings
from streamer.sink.native import Run
from streamer.sink.rollups import Touched

T = "2024-01-01T00:0{}:00Z"
T0 = 1_704_067_200_000


class FakeSink:
    """Records successful inserts; fails transiently ``transient`` times; refuses rows of ``poison``."""

    def __init__(self, log: list[str], transient: int = 0, poison: str | None = None) -> None:
        self.log = log
        self.transient = transient
        self.poison = poison
        self.rows: list[tuple[str, str, int, float]] = []
        self.tokens: list[str] = []
        self.points: list[Any] = []
        self.recomputed: list[frozenset[tuple[str, str, int]]] = []

    def store_samples(self, runs: Sequence[Run], token: str) -> int:
        self.tokens.append(token)
        if self.transient:
            self.transient -= 1
            raise SinkTransientError("ClickHouse unreachable")
        if any(point == self.poison for _, point, _, _ in runs):
            raise SinkPermanentError("value out of range")
        rows = [(s, p, t, v) for s, p, ts, vs in runs for t, v in zip(ts, vs, strict=True)]
        self.rows += rows
        self.log.append(f"insert:{len(rows)}")
        return len(rows)

    def recompute_rollups(self, touched: Touched) -> None:
        self.recomputed.append(touched.keys)
        self.log.append(f"recompute:{len(touched.keys)}")

    def insert_points(self, rows: list[Any]) -> int:
        self.points += rows
        return len(rows)


class FakeTable(PointsTable):
    async def catch_up(self, flush: FlushRows | None = None) -> int:
        return 0


class FakeProducer:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = []

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Any
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(OSError("broker gone"))
        else:
            self.sent.append((topic, key, value, dict(headers)))
            self.log.append(f"dlq:{key!r}")
            future.set_result(None)
        return future

    def sent_headers(self) -> list[dict[str, str]]:
        return [{name: raw.decode() for name, raw in headers.items()} for _, _, _, headers in self.sent]


def points_record(
    offset: int, site: str, point: str, value: dict[str, Any] | None
) -> ConsumerRecord[bytes, bytes]:
    raw = None if value is None else orjson.dumps({"site": site, "point": point, "updated_at_ms": 5, **value})
    key = f"{site}/{point}".encode()
    return ConsumerRecord("p", 0, offset, 1000 + offset, 0, key, raw, None, len(key), len(raw or b""), [])


def item(offset: int, value: bytes, partition: int = 0) -> Item:
    return Item(("event", partition, offset), "t.samples", partition, offset, b"k", value, {})


async def handle(pipeline: SamplesPipeline, items: list[Item]) -> BatchOutcome:
    """Poll-time preparation, then the batch: as the agent does it."""
    return await pipeline.handle([pipeline.prepare(i)[0] for i in items])


def samples(site: str, point: str, *pairs: Any) -> bytes:
    return orjson.dumps({"site": site, "point": point, "samples": [list(p) for p in pairs]})


@pytest.fixture
def table(base_settings: Settings) -> FakeTable:
    table = FakeTable(base_settings)
    table.apply(
        [
            points_record(0, "s", "s/a", {}),
            points_record(1, "s", "s/b", {}),
            points_record(2, "s", "s/off", {"collect_enabled": False}),
            points_record(3, "s", "s/gone", {}),
            points_record(4, "s", "s/gone", None),
            points_record(5, "s", "s/poison", {}),
        ]
    )
    return table


def make(
    settings: Settings, table: PointsTable, sink: FakeSink, producer: FakeProducer, log: list[str]
) -> SamplesPipeline:
    async def ack(handle: Any) -> None:
        log.append(f"ack:{handle[2]}")

    return SamplesPipeline(settings, sink, table, DlqWriter(settings, producer=producer), ack)


async def test_a_mixed_batch_is_loaded_dropped_rejected_dead_lettered_and_acked(
    base_settings: Settings, table: FakeTable
) -> None:
    """Good rows load; unconfigured/disabled/removed are dropped; a bad sample is rejected alone; broken
    records, refused rows and future samples (alone) go to the DLQ; every event is acked last."""
    log: list[str] = []
    sink, producer = FakeSink(log, poison="s/poison"), FakeProducer(log)
    pipeline = make(base_settings, table, sink, producer, log)
    items = [
        item(10, samples("s", "s/a", (T.format(0), 1.5), (T.format(1), "2"), (T.format(2), None))),
        item(11, samples("s", "s/unknown", (T.format(0), 1))),
        item(12, samples("s", "s/off", (T.format(0), 1), (T.format(1), 1))),
        item(13, samples("s", "s/gone", (T.format(0), 1))),
        item(14, b"{broken"),
        item(15, samples("s", "s/b", (T.format(0), {"nested": 1}), (T.format(1), [1]), (T.format(2), 3))),
        item(16, samples("s", "weather.temperature", (T.format(0), 40))),
        item(17, samples("s", "s/poison", (T.format(0), 1))),
        item(18, samples("s", "s/b", (T.format(3), "nan"), (T.format(4), True))),
        item(19, samples("s", "s/a", (T.format(5), 5), ("2100-01-01T00:00:00Z", 6))),
    ]
    outcome = await handle(pipeline, items)

    assert sorted(sink.rows) == sorted(
        [
            ("s", "s/a", T0, 1.5),
            ("s", "s/a", T0 + 60_000, 2.0),
            ("s", "weather.temperature", T0, 40.0),
            ("s", "s/b", T0 + 120_000, 3.0),
            ("s", "s/b", T0 + 240_000, 1.0),
            ("s", "s/a", T0 + 300_000, 5.0),
        ]
    )
    assert outcome.dropped == {"not_configured": 2, "disabled": 2}
    assert outcome.rejected == {"null": 1, "nan": 1, "not_scalar": 2, "future": 1}
    assert outcome.inserted == 6 and outcome.dead_letters == 3
    stages = {int(h["source_offset"]): (h["stage"], h["error_class"]) for h in producer.sent_headers()}
    assert stages == {
        14: ("decode", "RecordDecodeError"),
        17: ("insert", "SinkPermanentError"),
        19: ("normalise", "FutureSampleError"),
    }
    future = next(orjson.loads(v or b"") for _, _, v, h in producer.sent if h["source_offset"] == b"19")
    assert future == {"site": "s", "point": "s/a", "samples": [["2100-01-01T00:00:00Z", 6]]}
    acks = [entry for entry in log if entry.startswith("ack:")]
    assert acks == [f"ack:{o}" for o in range(10, 20)]
    assert log.index("ack:10") > max(i for i, e in enumerate(log) if not e.startswith("ack:"))


async def test_transient_failures_retry_the_same_batch_and_send_nothing_to_the_dlq(
    base_settings: Settings, table: FakeTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ClickHouse outage is retried with the same token until it passes; the DLQ stays empty."""
    monkeypatch.setattr(insert_batches, "MIN_BACKOFF_S", 0.001)
    log: list[str] = []
    sink, producer = FakeSink(log, transient=3), FakeProducer(log)
    pipeline = make(base_settings, table, sink, producer, log)
    await handle(
        pipeline,
        [item(1, samples("s", "s/a", (T.format(0), 1))), item(2, samples("s", "s/b", (T.format(0), 2)))],
    )
    assert len(sink.rows) == 2
    assert len(sink.tokens) == 4 and len(set(sink.tokens)) == 1
    assert producer.sent == []
    assert [e for e in log if e.startswith("ack:")] == ["ack:1", "ack:2"]


async def test_an_unwritable_dlq_raises_and_acks_nothing(base_settings: Settings, table: FakeTable) -> None:
    """If the dead letter cannot be made durable the batch fails with DlqWriteError, unacked."""
    log: list[str] = []
    pipeline = make(base_settings, table, FakeSink(log), FakeProducer(log, fail=True), log)
    with pytest.raises(DlqWriteError):
        await handle(pipeline, [item(1, samples("s", "s/a", (T.format(0), 1))), item(2, b"nope")])
    assert not [e for e in log if e.startswith("ack:")]


async def test_points_rows_reach_the_sink_once(base_settings: Settings, table: FakeTable) -> None:
    """Applied points (versions and tombstones) are upserted through the sink, each row once."""
    log: list[str] = []
    sink = FakeSink(log)
    pipeline = make(base_settings, table, sink, FakeProducer(log), log)
    await pipeline.refresh_points()
    await pipeline.refresh_points()
    assert [(r.point, r.deleted) for r in sink.points] == [
        ("s/a", False),
        ("s/b", False),
        ("s/off", False),
        ("s/gone", False),
        ("s/gone", True),
        ("s/poison", False),
    ]
    assert sink.points[4].version == 1004  # a tombstone is versioned by its Kafka timestamp


async def test_points_changed_between_poll_and_batch_are_judged_at_batch_time(
    base_settings: Settings, table: FakeTable
) -> None:
    """A point enabled after its record was polled still loads; one removed meanwhile is dropped."""
    log: list[str] = []
    sink = FakeSink(log)
    pipeline = make(base_settings, table, sink, FakeProducer(log), log)
    polled = [
        pipeline.prepare(item(1, samples("s", "s/late", (T.format(0), 1))))[0],
        pipeline.prepare(item(2, samples("s", "s/a", (T.format(0), 2))))[0],
    ]
    assert polled[0].normalised is None and polled[1].normalised is not None
    table.apply([points_record(6, "s", "s/late", {}), points_record(7, "s", "s/a", None)])
    outcome = await pipeline.handle(polled)
    assert sink.rows == [("s", "s/late", T0, 1.0)]
    assert outcome.dropped == {"not_configured": 1}


async def test_prepare_releases_the_pairs_it_normalised_and_the_batch_still_counts_them(
    base_settings: Settings, table: FakeTable
) -> None:
    """Prepared records keep no decoded pairs, normalised or not; one skipped then is decoded again."""
    log: list[str] = []
    sink = FakeSink(log)
    pipeline = make(base_settings, table, sink, FakeProducer(log), log)
    early = pipeline.prepare(item(1, samples("s", "s/a", (T.format(0), 1), (T.format(1), "x"))))
    late = pipeline.prepare(item(2, samples("s", "s/late", (T.format(0), 2))))
    assert early[1] == 2 and late[1] == 1
    assert early[0].record is not None and early[0].record.samples == []
    assert late[0].record is not None and late[0].record.samples == [] and late[0].normalised is None
    table.apply([points_record(6, "s", "s/late", {})])
    outcome = await pipeline.handle([early[0], late[0]])
    assert outcome.samples == 3 and outcome.rejected == {"non_numeric": 1}
    assert sorted(sink.rows) == [("s", "s/a", T0, 1.0), ("s", "s/late", T0, 2.0)]


async def aiter_batches(batches: list[list[Item]]) -> Any:
    for batch in batches:
        yield batch


async def test_run_stages_the_next_batch_while_the_previous_inserts(
    base_settings: Settings, table: FakeTable
) -> None:
    """run() judges batch N+1 while batch N's insert is in flight, yet acks every event in order."""
    log: list[str] = []

    class SlowSink(FakeSink):
        def store_samples(self, *args: Any) -> int:
            log.append("insert-start")
            time.sleep(0.05)
            return super().store_samples(*args)

    class LoggingTable(FakeTable):
        async def catch_up(self, flush: FlushRows | None = None) -> int:
            log.append("stage")
            return 0

    staged_table = LoggingTable(base_settings)
    staged_table.apply([points_record(0, "s", "s/a", {})])
    pipeline = make(base_settings, staged_table, SlowSink(log), FakeProducer(log), log)
    batches = [
        [pipeline.prepare(item(10 * b + i, samples("s", "s/a", (T.format(b), i))))[0] for i in range(2)]
        for b in range(3)
    ]
    await pipeline.run(aiter_batches(batches))
    assert [e for e in log if e.startswith("ack:")] == [f"ack:{o}" for o in (0, 1, 10, 11, 20, 21)]
    stages = [i for i, entry in enumerate(log) if entry == "stage"]
    assert stages[1] < log.index("insert:2")  # batch 2 was staged before batch 1's insert returned


async def test_run_raises_when_a_load_fails_and_acks_nothing_after(
    base_settings: Settings, table: FakeTable
) -> None:
    """A batch whose dead letters cannot be written stops run(); later batches are not acked."""
    log: list[str] = []
    settings = base_settings.model_copy(update={"rollup_flush_rows": 1})  # each batch flushed at once
    pipeline = make(settings, table, FakeSink(log), FakeProducer(log, fail=True), log)
    batches = [
        [pipeline.prepare(item(1, samples("s", "s/a", (T.format(0), 1))))[0]],
        [pipeline.prepare(item(2, b"{bad"))[0]],
        [pipeline.prepare(item(3, samples("s", "s/a", (T.format(1), 1))))[0]],
    ]
    with pytest.raises(DlqWriteError):
        await pipeline.run(aiter_batches(batches))
    assert [e for e in log if e.startswith("ack:")] == ["ack:1"]


async def test_run_recomputes_the_rollups_of_held_batches_once_before_acking_them(
    base_settings: Settings, table: FakeTable
) -> None:
    """Below the rows bound, run() acks three full batches (a backlog) only after one recompute of
    their keys' union."""
    log: list[str] = []
    sink = FakeSink(log)
    pipeline = make(_full_at_one(base_settings), table, sink, FakeProducer(log), log)
    batches = [
        [pipeline.prepare(item(10 * b, samples("s", point, (T.format(b), 1.0))))[0]]
        for b, point in enumerate(("s/a", "s/b", "s/a"))
    ]
    await pipeline.run(aiter_batches(batches))
    assert log == ["insert:1", "insert:1", "insert:1", "recompute:2", "ack:0", "ack:10", "ack:20"]
    assert sink.recomputed == [frozenset({("s", "s/a", T0 // 1000), ("s", "s/b", T0 // 1000)})]


def test_an_item_takes_its_deliverys_bytes() -> None:
    """The delivery lives on until its ack (held for a recompute); its key, value and headers go
    with the item, which lives only as long as its batch."""
    delivery = Delivery("t.samples", 3, 41, 7, b"k", b"v", {"h": b"1"}, object())
    taken = item_of(delivery)
    assert (taken.key, taken.value, dict(taken.headers)) == (b"k", b"v", {"h": b"1"})
    assert (taken.source_topic, taken.source_partition, taken.source_offset) == ("t.samples", 3, 41)
    assert taken.handle is delivery
    assert (delivery.key, delivery.value, dict(delivery.headers)) == (None, None, {})
    where = (delivery.topic, delivery.partition, delivery.offset, delivery.generation)
    assert where == ("t.samples", 3, 41, 7)


def _full_at_one(settings: Settings) -> Settings:
    """Every batch counts as full (a backlog), so its acks may be held for a shared recompute."""
    return settings.model_copy(update={"batch_max_rows": 1})


async def test_a_batch_that_did_not_fill_up_is_recomputed_and_acked_after_its_insert(
    base_settings: Settings, table: FakeTable
) -> None:
    """No backlog (batches below batch_max_rows, as live): each batch's commit waits for its own
    recompute only, not for the flush bounds; a full batch before it is acked with it."""
    log: list[str] = []
    settings = base_settings.model_copy(update={"batch_max_rows": 2, "rollup_flush_s": 3600.0})
    pipeline = make(settings, table, FakeSink(log), FakeProducer(log), log)
    pairs = [(T.format(0), 1.0), (T.format(1), 2.0)]
    full = [pipeline.prepare(item(1, samples("s", "s/a", *pairs)))[0]]
    await pipeline.load(await pipeline.stage(full))
    assert log == ["insert:2"] and pipeline.pending.held == 1  # full: held for the next flush
    short = [pipeline.prepare(item(2, samples("s", "s/b", pairs[0])))[0]]
    await pipeline.load(await pipeline.stage(short))
    assert log == ["insert:2", "insert:1", "recompute:2", "ack:1", "ack:2"]
    assert pipeline.pending.held == 0


async def test_run_flushes_once_the_held_rows_reach_the_bound(
    base_settings: Settings, table: FakeTable
) -> None:
    """At rollup_flush_rows held rows the batch's keys are recomputed and its events acked at once."""
    log: list[str] = []
    settings = _full_at_one(base_settings).model_copy(update={"rollup_flush_rows": 2})
    pipeline = make(settings, table, FakeSink(log), FakeProducer(log), log)
    pairs = [(T.format(0), 1.0), (T.format(1), 2.0)]
    batches = [[pipeline.prepare(item(b, samples("s", "s/a", *pairs[: b + 1])))[0]] for b in range(3)]
    await pipeline.run(aiter_batches(batches))
    # 1 row held; 1 + 2 rows reach the bound: recompute, ack both; the last batch's 2 rows alone
    assert log == [
        "insert:1",
        "insert:2",
        "recompute:1",
        "ack:0",
        "ack:1",
        "insert:2",
        "recompute:1",
        "ack:2",
    ]


async def test_held_acks_are_flushed_after_the_time_bound_while_no_batch_comes(
    base_settings: Settings, table: FakeTable
) -> None:
    """A batch's events held while the input is idle are recomputed and acked within rollup_flush_s."""
    log: list[str] = []
    settings = base_settings.model_copy(update={"rollup_flush_s": 0.2})
    pipeline = make(settings, table, FakeSink(log), FakeProducer(log), log)
    idle = asyncio.Event()

    async def batches() -> Any:
        yield [pipeline.prepare(item(1, samples("s", "s/a", (T.format(0), 1.0))))[0]]
        await idle.wait()  # the input goes idle, without ending

    running = asyncio.ensure_future(pipeline.run(batches()))
    try:
        for _ in range(100):
            if "ack:1" in log:
                break
            await asyncio.sleep(0.02)
        assert log == ["insert:1", "recompute:1", "ack:1"]
        assert not running.done()
    finally:
        running.cancel()


async def test_a_failing_recompute_is_retried_and_nothing_is_acked_before_it_succeeds(
    base_settings: Settings, table: FakeTable
) -> None:
    """A transient recompute failure retries the recompute alone (no second insert); acks come after."""
    log: list[str] = []

    class FlakyRollups(FakeSink):
        failures = 2

        def recompute_rollups(self, touched: Touched) -> None:
            if self.failures:
                self.failures -= 1
                log.append("recompute-failed")
                raise SinkTransientError("engine busy")
            super().recompute_rollups(touched)

    pipeline = make(base_settings, table, FlakyRollups(log), FakeProducer(log), log)
    await handle(pipeline, [item(5, samples("s", "s/a", (T.format(0), 1.0)))])
    assert log == ["insert:1", "recompute-failed", "recompute-failed", "recompute:1", "ack:5"]


async def test_flush_pending_acks_what_a_stopping_worker_holds(
    base_settings: Settings, table: FakeTable
) -> None:
    """flush_pending (the worker stopping) recomputes and acks what is held; nothing stays held."""
    log: list[str] = []
    pipeline = make(_full_at_one(base_settings), table, FakeSink(log), FakeProducer(log), log)
    await pipeline.load(
        await pipeline.stage([pipeline.prepare(item(7, samples("s", "s/b", (T.format(3), 2))))[0]])
    )
    assert log == ["insert:1"] and pipeline.pending.held == 1
    await pipeline.flush_pending()
    assert log == ["insert:1", "recompute:1", "ack:7"] and pipeline.pending.held == 0
