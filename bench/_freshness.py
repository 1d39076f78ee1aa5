"""Freshness from outside the processes: sample time → in Kafka → committed by the processor group.

A reader tails every partition of ``ace.samples`` (no group) and notes, per record, the samples it is
the first to carry (a time later than any seen before for its key: overlapping windows re-read older
ones). A sample is visible in ClickHouse once the processor group's committed offset passes its
record: the processor commits an offset only after the record's rows were inserted (processor/acks.py),
so the commit time is an upper bound of the insert's, by at most its commit interval (1 s) plus this
tracker's polling (``poll_s``, 0.25 s). The embedded stores are never opened while their workers run.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import deque

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamer.kafka import group_offsets
from streamer.settings import Settings
from streamer.times import BAD_TIME, TimeCache

_Pending = tuple[int, float, list[int]]  # offset, arrival (epoch s), first-seen sample times (ms)


class Freshness:
    """First-seen sample times per record, resolved to visibility when the group commits past them."""

    def __init__(self, settings: Settings, since_ms: int, poll_s: float = 0.25) -> None:
        self._settings = settings
        self._since_ms = since_ms  # samples older than this (the catch-up) are not followed
        self._poll_s = poll_s
        self._latest: dict[bytes, int] = {}
        self._pending: dict[int, deque[_Pending]] = {}
        self._times = TimeCache()
        self.ts = array("q")  # per visible sample: its time (ms),
        self.in_kafka = array("d")  # seconds from its time to its record's arrival in Kafka,
        self.visible = array("d")  # seconds from its time to the commit past its record
        self.late_seen = 0  # records the reader saw only after the group had committed them
        self._committed: dict[int, int] = {}

    async def run(self) -> None:
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id=f"{s.kafka_client_id}-bench-fresh",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
        await consumer.start()
        await admin.start()
        try:
            parts = list(range(s.samples_partitions))  # as ensure_topics created them
            consumer.assign([TopicPartition(s.topic_samples, p) for p in parts])
            self._pending = {p: deque() for p in parts}
            await asyncio.gather(self._read(consumer), self._resolve(admin))
        finally:
            await consumer.stop()
            await admin.close()

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.time()
            for tp, messages in batches.items():
                queue = self._pending[tp.partition]
                for m in messages:
                    self.late_seen += m.offset < self._committed.get(tp.partition, 0)
                    fresh = self._first_seen(m.key or b"", m.value or b"")
                    if fresh:
                        queue.append((m.offset, now, fresh))

    def _first_seen(self, key: bytes, value: bytes) -> list[int]:
        if b"/weather." in key:
            return []  # one sample per cycle stamped with its weather bucket, not a point's time
        latest = self._latest.get(key, self._since_ms - 1)
        lookup = self._times.lookup
        times = [lookup(t) for t, _ in orjson.loads(value)["samples"]]
        fresh = [t for t in times if t > latest and t != BAD_TIME]
        if fresh:
            self._latest[key] = max(fresh)
        return fresh

    async def _resolve(self, admin: AIOKafkaAdminClient) -> None:
        group, topic = self._settings.processor_app_id, self._settings.topic_samples
        while True:
            await asyncio.sleep(self._poll_s)
            offsets = await group_offsets(admin, group)
            now = time.time()
            for tp, committed in offsets.items():
                if tp.topic != topic:
                    continue
                self._committed[tp.partition] = committed
                queue = self._pending.get(tp.partition, deque())
                while queue and queue[0][0] < committed:
                    _, arrived, fresh = queue.popleft()
                    for t in fresh:
                        self.ts.append(t)
                        self.in_kafka.append(arrived - t / 1000)
                        self.visible.append(now - t / 1000)

    def unresolved(self, start_ms: int, end_ms: int) -> int:
        """First-seen samples in [start_ms, end_ms) whose records the group has not committed yet."""
        return sum(start_ms <= t < end_ms for q in self._pending.values() for _, _, f in q for t in f)
