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
    replication_factor: int
    config: dict[str, str]


# Below three brokers a lost broker would leave a 3-replica topic under min.insync.replicas: one replica.
CLUSTER_REPLICATION_FACTOR = 3


def replication_for(brokers: int) -> int:
    """The replication factor topics get on a cluster of ``brokers`` when none is configured."""
    return CLUSTER_REPLICATION_FACTOR if brokers >= CLUSTER_REPLICATION_FACTOR else 1


def min_insync_replicas(replication_factor: int) -> int:
    """An acks=all write is on two replicas whenever there are two, so one broker's loss loses nothing."""
    return 1 if replication_factor == 1 else 2


def topic_specs(settings: Settings, replication_factor: int | None = None) -> list[TopicSpec]:
    """Every topic streamer uses, with the policy DESIGN.md gives it (``replication_factor``: what
    ``resolve_replication`` found, when the settings leave it unset)."""
    rf = replication_factor or settings.replication_factor or 1
    durable = {"min.insync.replicas": str(min_insync_replicas(rf))}
    compact = {"cleanup.policy": "compact", **durable}

    def delete(retention_ms: int) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(retention_ms), **durable}

    return [
        TopicSpec(
            settings.topic_samples, settings.samples_partitions, rf, delete(settings.samples_retention_ms)
        ),
        # Same partition count as ace.samples: a point's metadata and samples share a partition.
        TopicSpec(settings.topic_points, settings.samples_partitions, rf, dict(compact)),
        TopicSpec(settings.topic_sync, settings.sync_partitions, rf, dict(compact)),
        TopicSpec(
            settings.topic_sync_runs, settings.sync_partitions, rf, delete(settings.sync_runs_retention_ms)
        ),
        TopicSpec(settings.topic_dlq, settings.dlq_partitions, rf, delete(settings.dlq_retention_ms)),
        TopicSpec(settings.topic_dlq_state, settings.dlq_partitions, rf, dict(compact)),
    ]


async def _admin(settings: Settings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"{settings.kafka_client_id}-admin"
    )
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise KafkaTransientError(f"Kafka at {settings.kafka_bootstrap_servers} unreachable: {exc}") from exc
    return admin


async def _broker_count(admin: AIOKafkaAdminClient) -> int:
    cluster = await admin.describe_cluster()
    return len(cluster["brokers"])


async def resolve_replication(settings: Settings) -> Settings:
    """``settings`` with ``replication_factor`` set: as configured, or from the cluster's broker count
    (``replication_for``), so faust's own topics are replicated like streamer's."""
    if settings.replication_factor is not None:
        return settings
    admin = await _admin(settings)
    try:
        brokers = await _broker_count(admin)
    except KafkaError as exc:
        raise KafkaTransientError(f"reading the cluster's brokers failed: {exc}") from exc
    finally:
        await admin.close()
    rf = replication_for(brokers)
    log.info("replication factor %d (%d brokers in the cluster's metadata)", rf, brokers)
    return settings.model_copy(update={"replication_factor": rf})


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics with their policies; returns the names created."""
    admin = await _admin(settings)
    try:
        existing = set(await admin.list_topics())
        rf = settings.replication_factor or replication_for(await _broker_count(admin))
        missing = [spec for spec in topic_specs(settings, rf) if spec.name not in existing]
        if missing:
            new = [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config) for s in missing
            ]
            # Another process may create one between list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            for spec in missing:
                log.info(
                    "created topic %s (%d partitions, replication %d, %s)",
                    spec.name, spec.partitions, spec.replication_factor, spec.config,
                )  # fmt: skip
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
