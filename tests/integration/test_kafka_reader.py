"""streamer.kafka.TopicReader against the real broker: a topic read to its end, exactly, on public API."""

from __future__ import annotations

import pytest

from streamer.errors import KafkaTransientError
from streamer.kafka import TopicReader, ensure_topics, reliable_producer, topic_partitions
from streamer.settings import Settings


async def _publish(settings: Settings, topic: str, keys: range) -> None:
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-test")
    await producer.start()
    try:
        for i in keys:
            await producer.send(topic, f"v{i}".encode(), key=f"k{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_read_to_end_sees_what_was_published_before_each_call_and_no_more(
    kafka_settings: Settings,
) -> None:
    """Every partition read from the beginning; records published while a read runs belong to the next."""
    settings = kafka_settings
    await ensure_topics(settings)
    topic = settings.topic_points
    assert await topic_partitions(settings, topic) == list(range(settings.samples_partitions))
    await _publish(settings, topic, range(200))
    async with TopicReader(settings, topic, client_suffix="test") as reader:
        assert [tp.partition for tp in reader.partitions] == list(range(settings.samples_partitions))
        first: list[bytes] = []
        published_meanwhile = False
        async for batch in reader.batches_to_end(max_records=7):
            first += [r.key or b"" for r in batch]
            if not published_meanwhile:  # fetched now, these lie past the end offsets of this call
                await _publish(settings, topic, range(200, 300))
                published_meanwhile = True
        assert sorted(first) == sorted(f"k{i}".encode() for i in range(200))
        second: list[bytes] = []
        assert await reader.read_to_end(lambda batch: second.extend(r.key or b"" for r in batch)) == 100
        assert sorted(second) == sorted(f"k{i}".encode() for i in range(200, 300))
        assert await reader.read_to_end(lambda batch: None) == 0
        assert sum((await reader.end_offsets()).values()) == 300


async def test_a_missing_topic_is_one_clear_transient_error(kafka_settings: Settings) -> None:
    """A topic that does not exist: KafkaTransientError naming it and the command that creates it."""
    with pytest.raises(KafkaTransientError, match=r"does not exist \(run `streamer topics`\)"):
        await topic_partitions(kafka_settings, kafka_settings.topic_points + ".nope", wait_s=0.5)
