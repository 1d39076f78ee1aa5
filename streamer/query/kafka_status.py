"""What Kafka says about the pipeline: consumer lag of the processor group and DLQ depth.

Lag is the end offset of each ``ace.samples`` / ``ace.sync_runs`` partition minus the offset the
processor group (faust's group id is ``processor_app_id``) committed there. The DLQ depth is the
records the DLQ topic still retains (end minus beginning offsets). Answers are cached for a few
seconds so /health, /status and the page polling them do not each open Kafka connections.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError
from streamer.kafka import group_offsets
from streamer.settings import Settings

TIMEOUT_S: Final = 5.0
CACHE_S: Final = 3.0


def partition_lags(
    partitions: list[TopicPartition],
    committed: dict[TopicPartition, int],
    begin: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> list[dict[str, Any]]:
    """One row per partition; a partition the group never committed lags by everything retained."""
    rows = []
    for tp in sorted(partitions, key=lambda p: (p.topic, p.partition)):
        done = committed.get(tp)
        lag = end[tp] - (done if done is not None and done >= 0 else begin[tp])
        rows.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "committed": done,
                "end": end[tp],
                "lag": max(0, lag),
            }
        )
    return rows


async def _partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, list[int]]:
    """Partition numbers per topic; a topic that does not exist (yet) has none."""
    described = await admin.describe_topics(topics)
    found = {
        d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described if not d["error_code"]
    }
    return {t: found.get(t, []) for t in topics}


class KafkaProbe:
    """Cached look at the broker; never raises: an unreachable broker is reported, not thrown."""

    def __init__(self, settings: Settings, cache_s: float = CACHE_S) -> None:
        self._settings = settings
        self._cache_s = cache_s
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def snapshot(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._cache_s:
                return self._cached[1]
            try:
                result = await asyncio.wait_for(self._read(), TIMEOUT_S * 2)
            except (KafkaError, KafkaTransientError, OSError, TimeoutError) as exc:
                result = self._unreachable(exc)
            self._cached = (time.monotonic(), result)
            return result

    def _unreachable(self, exc: BaseException) -> dict[str, Any]:
        reason = str(exc) or type(exc).__name__
        return {
            "reachable": False,
            "error": f"Kafka at {self._settings.kafka_bootstrap_servers} unreachable: {reason}"[:300],
            "group": self._settings.processor_app_id,
            "partitions": [],
            "total_lag": None,
            "dlq_depth": None,
        }

    async def _read(self) -> dict[str, Any]:
        s = self._settings
        common: dict[str, Any] = {
            "bootstrap_servers": s.kafka_bootstrap_servers,
            "request_timeout_ms": int(TIMEOUT_S * 1000),
        }
        admin = AIOKafkaAdminClient(client_id=f"{s.kafka_client_id}-status", **common)
        consumer = AIOKafkaConsumer(
            client_id=f"{s.kafka_client_id}-status", enable_auto_commit=False, **common
        )
        try:
            await admin.start()
            await consumer.start()
            return await self._offsets(admin, consumer)
        finally:
            await consumer.stop()
            await admin.close()

    async def _offsets(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> dict[str, Any]:
        s = self._settings
        # The topics the processor group consumes; ace.points is read group-less, so it has no lag here.
        consumed = (s.topic_samples, s.topic_sync_runs)
        partitions = await _partitions(admin, [*consumed, s.topic_dlq])
        parts = [TopicPartition(t, p) for t in consumed for p in partitions[t]]
        dlq = [TopicPartition(s.topic_dlq, p) for p in partitions[s.topic_dlq]]
        committed = await group_offsets(admin, s.processor_app_id, timeout=TIMEOUT_S)
        begin = await consumer.beginning_offsets(parts + dlq) if parts or dlq else {}
        end = await consumer.end_offsets(parts + dlq) if parts or dlq else {}
        rows = partition_lags(parts, committed, begin, end)
        return {
            "reachable": True,
            "error": None,
            "group": s.processor_app_id,
            "partitions": rows,
            "total_lag": sum(r["lag"] for r in rows),
            "dlq_depth": sum(end[tp] - begin[tp] for tp in dlq) if dlq else 0,
        }
