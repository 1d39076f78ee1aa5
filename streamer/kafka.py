"""Kafka plumbing shared by every component: topic specs, topic creation, clients with safe defaults,
and the one way to read a topic to its end (``TopicReader``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    NotCoordinatorForGroupError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
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


# ------------------------------------------------------------------------------ reading a topic to its end
OnRecords = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], None]


async def topic_partitions(settings: Settings, topic: str, wait_s: float = 10.0) -> list[int]:
    """The partition ids of ``topic``, from a metadata request (the admin client's ``describe_topics``).

    A topic just created may be unknown or leaderless for a moment: asked again for up to ``wait_s``.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"{settings.kafka_client_id}-metadata"
    )
    try:
        await admin.start()
    except KafkaError as exc:
        raise KafkaTransientError(f"Kafka at {settings.kafka_bootstrap_servers} unreachable: {exc}") from exc
    deadline = time.monotonic() + wait_s
    try:
        while True:
            (described,) = await admin.describe_topics([topic])
            code, partitions = described["error_code"], described["partitions"]
            if code == 0 and partitions and all(p["error_code"] == 0 for p in partitions):
                return sorted(p["partition"] for p in partitions)
            if time.monotonic() >= deadline:
                if code == UnknownTopicOrPartitionError.errno:
                    raise KafkaTransientError(f"topic {topic} does not exist (run `streamer topics`)")
                raise KafkaTransientError(f"topic {topic} has no usable metadata: {for_code(code).__name__}")
            await asyncio.sleep(0.1)
    except KafkaError as exc:
        raise KafkaTransientError(f"cannot read topic {topic}: {exc}") from exc
    finally:
        await admin.close()


class TopicReader:
    """Reads every partition of one topic from the beginning, without a consumer group.

    Commits nothing, so any number of readers each see the whole topic (the points table's changelog,
    the producer's compacted state, the DLQ tools). ``batches_to_end`` / ``read_to_end`` consume up to
    the end offsets read when called, and no further (a record fetched past them is read next call):
    everything published before the call is seen. Only aiokafka's public API; ``partitions`` defaults
    to the topic's whole list (``topic_partitions``). Use ``async with`` or ``start``/``stop``.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        client_suffix: str,
        partitions: Sequence[int] | None = None,
        fetch_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._settings = settings
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{settings.kafka_client_id}-{client_suffix}",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=fetch_bytes,
            fetch_max_wait_ms=100,
        )
        self._given = None if partitions is None else sorted(partitions)
        self._partitions: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)

    async def __aenter__(self) -> TopicReader:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, assign every partition of the topic and seek to its beginning."""
        ids = self._given if self._given is not None else await topic_partitions(self._settings, self.topic)
        try:
            await self._consumer.start()
        except KafkaError as exc:
            raise KafkaTransientError(
                f"Kafka at {self._settings.kafka_bootstrap_servers} unreachable: {exc}"
            ) from exc
        self._partitions = [TopicPartition(self.topic, p) for p in ids]
        try:
            self._consumer.assign(self._partitions)
            await self._consumer.seek_to_beginning(*self._partitions)
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaTransientError(f"cannot read topic {self.topic}: {exc}") from exc
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
                    for tp, records in fetched.items():
                        if records and records[-1].offset >= end[tp]:
                            records = [r for r in records if r.offset < end[tp]]
                            consumer.seek(tp, end[tp])  # the rest is read by the next call
                        if records:
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
