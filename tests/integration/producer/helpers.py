"""Reading back what the producer published: whole topics, compacted views, distinct samples."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from streamer.kafka import TopicReader
from streamer.settings import Settings
from streamer.times import iso_to_ms


async def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None, int]]:
    """Every record of ``topic`` up to the end offsets taken now: (key, value, partition)."""
    out: list[tuple[bytes | None, bytes | None, int]] = []

    def take(messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        out.extend((m.key, m.value, m.partition) for m in messages)

    async with TopicReader(settings, topic, client_suffix="test-read-topic") as reader:
        await reader.read_to_end(take)
    return out


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
    ms = iso_to_ms(text)
    assert ms is not None, f"not a storable ISO 8601 time: {text!r}"
    return ms


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
    async with TopicReader(settings, topic, client_suffix="test-count") as reader:
        return sum((await reader.end_offsets()).values())


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``streamer`` child process built from ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(settings.to_env())
    return env
