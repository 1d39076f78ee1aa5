"""Kafka plumbing shared by every component: topic specs, topic creation, clients with safe defaults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    NotCoordinatorForGroupError,
    TopicAlreadyExistsError,
)

from streamer.errors import KafkaTransientError
from streamer.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic streamer uses, with the policy DESIGN.md gives it."""
    rf = settings.replication_factor
    compact = {"cleanup.policy": "compact", "min.insync.replicas": "1" if rf == 1 else "2"}
    return [
        TopicSpec(
            settings.topic_samples,
            settings.samples_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(settings.samples_retention_ms)},
        ),
        # Same partition count as ace.samples: a point's metadata and samples share a partition.
        TopicSpec(settings.topic_points, settings.samples_partitions, dict(compact)),
        TopicSpec(settings.topic_sync, settings.sync_partitions, dict(compact)),
        TopicSpec(
            settings.topic_sync_runs,
            settings.sync_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(settings.sync_runs_retention_ms)},
        ),
        TopicSpec(
            settings.topic_dlq,
            settings.dlq_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(settings.dlq_retention_ms)},
        ),
        TopicSpec(settings.topic_dlq_state, settings.dlq_partitions, dict(compact)),
    ]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics with their policies; returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"{settings.kafka_client_id}-admin"
    )
    try:
        await admin.start()
    except KafkaError as exc:
        raise KafkaTransientError(f"Kafka at {settings.kafka_bootstrap_servers} unreachable: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            new = [
                NewTopic(s.name, s.partitions, settings.replication_factor, topic_configs=s.config)
                for s in missing
            ]
            # Another process may create one between list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            for spec in missing:
                log.info("created topic %s (%d partitions, %s)", spec.name, spec.partitions, spec.config)
        return [s.name for s in missing]
    except KafkaError as exc:
        raise KafkaTransientError(f"creating topics failed: {exc}") from exc
    finally:
        await admin.close()


async def topic_max_message_bytes(settings: Settings, topic: str) -> int:
    """The topic's ``max.message.bytes``: the broker refuses a larger record batch."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"{settings.kafka_client_id}-admin"
    )
    try:
        await admin.start()
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None})
        (response,) = await admin.describe_configs([resource])
        (found,) = response.to_object()["resources"]
    except KafkaError as exc:
        raise KafkaTransientError(f"reading the config of {topic} failed: {exc}") from exc
    finally:
        await admin.close()
    entries = {e["config_names"]: e["config_value"] for e in found["config_entries"]}
    try:
        return int(entries["max.message.bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KafkaTransientError(f"{topic} has no readable max.message.bytes: {found}") from exc


def reliable_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a send's future resolves only once the record is durable."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id,
        "enable_idempotence": True,
        "acks": "all",
        "compression_type": "lz4",
        "linger_ms": 20,
        "max_batch_size": 1_048_576,
        "max_request_size": 8_388_608,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, settings: Settings) -> None:
    """Start an aiokafka client, translating connection failures."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise KafkaTransientError(f"Kafka at {settings.kafka_bootstrap_servers} unreachable") from exc


# A fresh broker creates __consumer_offsets on the first coordinator lookup and answers
# "not available" until it is loaded; these errors mean "ask again shortly", not "no group".
_COORDINATOR_PENDING = (
    GroupCoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorForGroupError,
)


async def group_offsets(
    admin: AIOKafkaAdminClient, group: str, timeout: float = 30.0, pause: float = 0.25
) -> dict[TopicPartition, int]:
    """The committed offset of every partition of ``group``, waiting out a coordinator still loading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = await admin.list_consumer_group_offsets(group)
        except _COORDINATOR_PENDING as exc:
            if time.monotonic() >= deadline:
                raise KafkaTransientError(
                    f"Kafka group coordinator for {group!r} not available after {timeout:.0f} s"
                ) from exc
            await asyncio.sleep(pause)
            continue
        return {tp: meta.offset for tp, meta in raw.items()}
