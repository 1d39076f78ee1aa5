"""Reading back what the producer published: whole topics, compacted views, distinct samples."""

from __future__ import annotations

import os
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.settings import Settings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


async def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
    """Every record of ``topic`` up to the end offsets taken now: (key, value, partition)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        # topics() alone does not update the consumer's own metadata: read partitions from the answer.
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        assert tps, f"topic {topic} not found"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None, int]] = []
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for tp, messages in (await consumer.getmany(*todo, timeout_ms=1000)).items():
                out += [(m.key, m.value, tp.partition) for m in messages if m.offset < ends[tp]]
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        await consumer.stop()


def compacted(records: list[tuple[bytes | None, bytes | None, int]]) -> dict[bytes, bytes]:
    """Last value per key, tombstones removing: what compaction converges to."""
    view: dict[bytes, bytes] = {}
    for key, value, _ in records:
        assert key is not None
        if value is None:
            view.pop(key, None)
        else:
            view[key] = value
    return view


def ts_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def distinct_samples(
    records: list[tuple[bytes | None, bytes | None, int]], *, skip_weather: bool = True
) -> dict[str, set[tuple[str, int]]]:
    """site → distinct (point, ts_ms) in ace.samples records; checks each record's key matches its body."""
    out: dict[str, set[tuple[str, int]]] = {}
    for key, value, _ in records:
        assert key is not None and value is not None
        record: dict[str, Any] = orjson.loads(value)
        assert key == f"{record['site']}/{record['point']}".encode()
        if skip_weather and record["point"].startswith("weather."):
            continue
        seen = out.setdefault(record["site"], set())
        point = record["point"]
        for time, _value in record["samples"]:
            seen.add((point, ts_ms(time)))
    return out


def summary(site: str, samples: set[tuple[str, int]]) -> dict[str, int]:
    """Count and key checksum as the simulator's ``expected()`` computes them."""
    checksum = sum(zlib.crc32(f"{site}/{point}@{ts}".encode()) for point, ts in samples)
    return {"count": len(samples), "key_checksum": checksum}


async def record_count(settings: Settings, topic: str) -> int:
    """Records in ``topic`` now (sum of end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``streamer`` child process built from ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(settings.to_env())
    return env
