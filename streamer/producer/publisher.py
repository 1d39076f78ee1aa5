"""Publishing many records fast, and knowing when every one of them is durable.

aiokafka's per-message ``send()`` costs tens of microseconds in Python; filling ``create_batch()``
builders and handing them over with ``send_batch()`` was measured ~6x faster here. The price is that
partitioning becomes ours: keys are hashed with aiokafka's ``DefaultPartitioner`` (murmur2, as Java and
faust do), so a point's samples land in the partition of its ``ace.points`` record. Delivery futures are
collected and awaited in bounded groups: backpressure without a round trip per record. ``flush()``
returns only when every record handed over so far is acknowledged (acks=all, idempotent producer).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from streamer.errors import KafkaTransientError

_partitioner = DefaultPartitioner()


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The partition aiokafka, faust and the Java client choose for ``key``."""
    return int(_partitioner(key, partitions, partitions))


async def topic_partitions(producer: AIOKafkaProducer, topic: str) -> list[int]:
    try:
        found = await producer.partitions_for(topic)
    except KafkaError as exc:
        raise KafkaTransientError(f"no metadata for topic {topic}: {exc}") from exc
    if not found:
        raise KafkaTransientError(f"topic {topic} has no partitions")
    return sorted(found)


class BatchPublisher:
    """Batches records of one topic per partition; ``flush()`` awaits every acknowledgement.

    Not shared between tasks: each window (or points refresh) has its own, over a shared producer.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: list[int],
        max_in_flight: int = 16,
        partition_cache: dict[bytes, int] | None = None,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._partitions = partitions
        self._max_in_flight = max_in_flight
        self._builders: dict[int, Any] = {}
        self._pending: list[tuple[asyncio.Future[Any], int]] = []
        # murmur2 is pure Python here: hash each key once per process, not once per record.
        self._partition_of: dict[bytes, int] = {} if partition_cache is None else partition_cache
        self.records_acked = 0

    async def add(self, key: bytes, value: bytes | None) -> None:
        """Queue one record; may wait for earlier batches to be acknowledged (backpressure)."""
        partition = self._partition_of.get(key)
        if partition is None:
            partition = self._partition_of[key] = partition_for(key, self._partitions)
        builder = self._builders.get(partition)
        if builder is None:
            builder = self._builders[partition] = self._producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is not None:
            return
        await self._submit(partition)
        builder = self._builders[partition] = self._producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:
            size = len(key) + len(value or b"")
            raise ValueError(f"record of {size} bytes for {self.topic} exceeds the batch size")

    async def submit(self) -> None:
        """Hand over every open batch now (after each page: records do not wait for the window's end)."""
        for partition in list(self._builders):
            await self._submit(partition)

    async def flush(self) -> int:
        """Hand over every open batch and wait until all are acknowledged; returns records acked."""
        await self.submit()
        await self._await(len(self._pending))
        return self.records_acked

    def abandon(self) -> None:
        """Forget open batches (after a failure): the window will be re-polled anyway."""
        self._builders.clear()
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()

    async def _submit(self, partition: int) -> None:
        builder = self._builders.pop(partition, None)
        if builder is None or builder.record_count() == 0:
            return
        count = builder.record_count()
        try:
            future = await self._producer.send_batch(builder, self.topic, partition=partition)
        except KafkaError as exc:
            raise KafkaTransientError(f"publishing to {self.topic} failed: {exc}") from exc
        self._pending.append((future, count))
        if len(self._pending) >= self._max_in_flight:
            await self._await(len(self._pending) // 2)

    async def _await(self, count: int) -> None:
        """Wait for the ``count`` oldest deliveries; any failure fails the caller's window."""
        done, self._pending = self._pending[:count], self._pending[count:]
        for future, records in done:
            try:
                await future
            except KafkaError as exc:
                raise KafkaTransientError(f"publishing to {self.topic} failed: {exc}") from exc
            self.records_acked += records
