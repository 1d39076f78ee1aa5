"""Durable producer state, recovered from compacted topics.

The producer keeps no local state: the watermarks live in ``ace.sync`` and the last published points in
``ace.points``, both compacted. On start each is read from the beginning to the end offsets taken at
that moment; the last value per key wins and a tombstone removes the key.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streamer.errors import KafkaTransientError
from streamer.logs import log_event
from streamer.models import SyncState
from streamer.producer.points import PointContent, decode_point_value
from streamer.settings import Settings

log = logging.getLogger(__name__)


async def read_compacted(settings: Settings, topic: str, partitions: list[int]) -> dict[bytes, bytes]:
    """The current view of a compacted topic: key → last value, tombstoned keys absent.

    ``partitions`` must be the topic's full partition list (from the producer's metadata): reading only
    some would silently forget state.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.kafka_client_id}-state",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8_388_608,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise KafkaTransientError(f"Kafka at {settings.kafka_bootstrap_servers} unreachable: {exc}") from exc
    try:
        return await _read_to_end(consumer, [TopicPartition(topic, p) for p in partitions])
    except KafkaError as exc:
        raise KafkaTransientError(f"reading {topic} failed: {exc}") from exc
    finally:
        await consumer.stop()


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[bytes, bytes]:
    view: dict[bytes, bytes] = {}
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    todo = {tp for tp in tps if ends[tp] > 0}
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=1_000)
        for messages in batches.values():
            for message in messages:
                if message.key is None:
                    continue
                if message.value is None:
                    view.pop(message.key, None)
                else:
                    view[message.key] = message.value
        for tp in list(todo):
            if await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
    return view


def decode_sync(view: dict[bytes, bytes], broken: dict[str, str] | None = None) -> dict[str, SyncState]:
    """``ace.sync`` view → site → state. An undecodable value is logged and left out; with ``broken``,
    its site (the record's key) is added there with the error: the runner fails that site until an
    operator resets it (``producer/reset.py``) instead of restarting it at now − lookback, which would
    skip everything older."""
    states: dict[str, SyncState] = {}
    for key, value in view.items():
        site = key.decode(errors="replace")
        try:
            state = SyncState.model_validate_json(value)
        except ValidationError as exc:
            error = f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
            log_event(log, logging.ERROR, "sync state undecodable", site=site, error=error)
            if broken is not None:
                broken[site] = error
            continue
        states[state.site] = state
    return states


def decode_points(view: dict[bytes, bytes]) -> dict[str, dict[str, PointContent]]:
    """``ace.points`` view → site → point → last published content."""
    sites: dict[str, dict[str, PointContent]] = defaultdict(dict)
    for key, value in view.items():
        site, sep, point = key.decode(errors="replace").partition("/")
        if not sep:
            continue
        try:
            sites[site][point] = decode_point_value(value)
        except orjson.JSONDecodeError:
            # Unreadable: forget it, so the next refresh republishes the point.
            log_event(log, logging.WARNING, "bad point record ignored", key=key.decode(errors="replace"))
    return dict(sites)
