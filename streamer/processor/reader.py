"""A group-less reader of every partition of one topic: the points table's changelog and ``dlq list``.

No consumer group: each reader sees the whole topic from the beginning and commits nothing, so any
number of workers can each hold a complete copy. ``read_to_end`` consumes until every partition's
position reaches the end offsets read when it is called: everything published before the call is
then seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from streamer.errors import KafkaTransientError
from streamer.settings import Settings

OnRecords = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], None]


class TopicReader:
    """Reads one topic from the beginning without a group; see the module docstring."""

    def __init__(self, settings: Settings, topic: str, *, client_suffix: str) -> None:
        self._settings = settings
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{settings.kafka_client_id}-{client_suffix}",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=100,
        )
        self._partitions: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)

    async def start(self) -> None:
        """Connect, assign every partition of the topic and seek to its beginning."""
        try:
            await self._consumer.start()
            # A group-less consumer tracks no topic: ask for this one's metadata explicitly (the
            # public partitions_for_topic only answers from metadata already fetched).
            partitions = await self._consumer._client._wait_on_metadata(self.topic)
        except UnknownTopicOrPartitionError as exc:
            await self._consumer.stop()
            raise KafkaTransientError(f"topic {self.topic} does not exist (run `streamer topics`)") from exc
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaTransientError(f"cannot read topic {self.topic}: {exc}") from exc
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._consumer.pause(*self._partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        try:
            return dict(await self._consumer.end_offsets(self._partitions))
        except KafkaError as exc:
            raise KafkaTransientError(f"reading the end offsets of {self.topic} failed: {exc}") from exc

    async def batches_to_end(
        self, *, poll_ms: int = 100, max_records: int = 10_000
    ) -> AsyncGenerator[Sequence[ConsumerRecord[bytes, bytes]], None]:
        """Yield the records up to the end offsets read now, one fetch at a time (bounded memory).

        Serialised: concurrent callers each wait for their own end offsets, one after the other.
        """
        async with self._lock:
            consumer = self._consumer
            try:
                end = await consumer.end_offsets(self._partitions)
                pending = [tp for tp in self._partitions if await consumer.position(tp) < end[tp]]
                consumer.resume(*pending)
                while pending:
                    fetched = await consumer.getmany(*pending, timeout_ms=poll_ms, max_records=max_records)
                    for records in fetched.values():
                        yield records
                    pending = [tp for tp in pending if await consumer.position(tp) < end[tp]]
            except KafkaError as exc:
                raise KafkaTransientError(f"reading topic {self.topic} failed: {exc}") from exc
            finally:
                # Paused between calls: no long-polling fetch then holds the connection, which
                # would delay the next end_offsets request by up to fetch_max_wait_ms.
                consumer.pause(*self._partitions)

    async def read_to_end(self, on_records: OnRecords, *, poll_ms: int = 100) -> int:
        """Consume until every partition reaches the end offsets read now; returns records seen."""
        seen = 0
        async for records in self.batches_to_end(poll_ms=poll_ms):
            seen += len(records)
            on_records(records)
        return seen
