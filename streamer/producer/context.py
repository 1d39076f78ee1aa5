"""What every part of the producer shares: settings, the ACE client, the Kafka producer, the clock, and the
state recovered from the compacted topics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError
from streamer.models import AcePoint, AceSite, SyncState
from streamer.producer.points import PointContent
from streamer.producer.publisher import BatchPublisher
from streamer.producer.windows import window_now
from streamer.settings import Settings

if TYPE_CHECKING:
    from streamer.producer.repair import RepairLoop

Clock = Callable[[], int]
"""Epoch milliseconds; injectable so tests and ``--now`` fix the time."""


def system_clock() -> int:
    return time.time_ns() // 1_000_000


def fixed_clock(now_ms: int) -> Clock:
    return lambda: now_ms


class SiteStats(Protocol):
    api_calls: int


class AceApi(Protocol):
    """The part of ``streamer.ace.client.AceClient`` the producer uses."""

    async def list_sites(self) -> list[AceSite]: ...

    async def list_points(self, site: str) -> list[AcePoint]: ...

    def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> Any: ...

    async def get_weather(self, site: str) -> list[Any]: ...

    def site_stats(self, site: str) -> Any: ...

    def api_now_ms(self) -> int | None: ...


@dataclass
class ProducerContext:
    settings: Settings
    client: AceApi
    producer: AIOKafkaProducer
    clock: Clock = system_clock
    partitions: dict[str, list[int]] = field(default_factory=dict)
    states: dict[str, SyncState] = field(default_factory=dict)
    broken_sync: dict[str, str] = field(default_factory=dict)  # site → why its ace.sync record is unreadable
    points: dict[str, dict[str, PointContent]] = field(default_factory=dict)
    points_refreshed: dict[str, float] = field(default_factory=dict)
    partition_cache: dict[str, dict[bytes, int]] = field(default_factory=dict)
    repair: RepairLoop | None = None  # the repair loop (producer/repair.py); None: off
    # site → the first instant its windows read after the last points refresh (producer/catchup.py)
    refresh_marks: dict[str, int] = field(default_factory=dict)
    record_max_bytes: int = 1_000_000  # an ace.samples record at most (open_producer: the topic's limit)

    def window_now(self) -> int:
        """Where windows may end now: the local clock bounded by the API's (its ``Date``, less a margin)."""
        return window_now(self.clock(), self.client.api_now_ms(), self.settings.ace_clock_margin_s)

    def publisher(self, topic: str) -> BatchPublisher:
        cache = self.partition_cache.setdefault(topic, {})
        return BatchPublisher(self.producer, topic, self.partitions[topic], partition_cache=cache)

    async def send_and_wait(self, topic: str, key: bytes, value: bytes | None) -> None:
        try:
            await self.producer.send_and_wait(topic, value=value, key=key)
        except KafkaError as exc:
            raise KafkaTransientError(f"publishing to {topic} failed: {exc}") from exc
