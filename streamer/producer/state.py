"""Durable producer state, recovered from compacted topics.

The producer keeps no local state: the watermarks live in ``ace.sync`` and the last published points in
``ace.points``, both compacted. On start each is read from the beginning to the end offsets taken at
that moment; the last value per key wins and a tombstone removes the key.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streamer.kafka import TopicReader
from streamer.logs import log_event
from streamer.models import SyncState
from streamer.producer.points import PointDigest, decode_point_value
from streamer.settings import Settings

log = logging.getLogger(__name__)


async def read_compacted(settings: Settings, topic: str, partitions: list[int]) -> dict[bytes, bytes]:
    """The current view of a compacted topic: key → last value, tombstoned keys absent.

    ``partitions`` must be the topic's full partition list (from the producer's metadata): reading only
    some would silently forget state.
    """
    view: dict[bytes, bytes] = {}

    def take(messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for message in messages:
            if message.key is None:
                continue
            if message.value is None:
                view.pop(message.key, None)
            else:
                view[message.key] = message.value

    reader = TopicReader(settings, topic, client_suffix="state", partitions=partitions, fetch_bytes=8_388_608)
    async with reader:
        await reader.read_to_end(take)
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


def decode_points(view: dict[bytes, bytes]) -> dict[str, dict[str, PointDigest]]:
    """``ace.points`` view → site → point → last published content."""
    sites: dict[str, dict[str, PointDigest]] = defaultdict(dict)
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
