"""Producer workers sharing the sites: the partitions a consumer group on ``ace.sync`` assigns.

A site's sync state lives in the ``ace.sync`` partition its key hashes to, so owning a partition
means owning its sites. Workers started with the same ``producer_group`` join one consumer group
on ``ace.sync``; Kafka splits the partitions among them and moves them when a worker joins, leaves
or dies. The group's records are not used (the runner reads state with its own reader); polling
only keeps the membership alive.

Invariants: a worker syncs a site only while it owns the site's partition, and checks that before
every window. A site it has just gained is synced from the state in ``ace.sync`` read after the
gain, not from what the worker remembered: the previous owner may have advanced it since. During a
hand-over both workers may poll one window of a site; the downstream inserts are idempotent, so that
costs a repeat, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError
from streamer.kafka import start_client
from streamer.logs import log_event
from streamer.producer.publisher import partition_for
from streamer.settings import Settings

log = logging.getLogger(__name__)

POLL_MS = 500

SiteFilter = Callable[[str], bool]


def sync_partition(site: str, sync_partitions: list[int]) -> int:
    """The ``ace.sync`` partition holding ``site``'s state: the one rule of who owns a site (its owner)."""
    return partition_for(site.encode(), sync_partitions)


def sites_in(partitions: set[int], sync_partitions: list[int]) -> SiteFilter:
    """Accept the sites whose ``ace.sync`` partition is one of ``partitions``."""
    return lambda site: sync_partition(site, sync_partitions) in partitions


class SiteShard(ConsumerRebalanceListener):  # type: ignore[misc]
    """This worker's share of the sites, kept by the group's partition assignment."""

    def __init__(self, settings: Settings, sync_partitions: list[int]) -> None:
        self._settings = settings
        self._partitions = sync_partitions
        self._owned: set[int] = set()
        self._gained: set[int] = set()
        self._assigned = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._poller: asyncio.Task[None] | None = None

    def owns(self, site: str) -> bool:
        """Whether this worker syncs ``site`` now."""
        return sync_partition(site, self._partitions) in self._owned

    def take_gained(self) -> set[int]:
        """Partitions gained since the last call (their sites' state must be re-read)."""
        gained, self._gained = self._gained & self._owned, set()
        return gained

    async def start(self, timeout_s: float = 60.0) -> None:
        """Join the group and wait for the first assignment."""
        s = self._settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id=f"{s.kafka_client_id}-shard",
            group_id=s.producer_group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        self._consumer.subscribe([s.topic_sync], listener=self)
        await start_client(self._consumer, s)
        self._poller = asyncio.create_task(self._poll())
        try:
            await asyncio.wait_for(self._assigned.wait(), timeout_s)
        except TimeoutError as exc:
            await self.stop()
            raise KafkaTransientError(
                f"no ace.sync partitions assigned in group {s.producer_group!r} within {timeout_s:.0f} s"
            ) from exc

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: the others take the partitions now
        self._owned = set()

    async def _poll(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                await self._consumer.getmany(timeout_ms=POLL_MS)
            except KafkaError as exc:
                # The group may hand our partitions to another worker meanwhile: own nothing until
                # the next assignment rather than sync sites twice.
                self._owned = set()
                log_event(
                    log, logging.WARNING, "producer group poll failed", error=f"{type(exc).__name__}: {exc}"
                )
                await asyncio.sleep(1.0)

    # ConsumerRebalanceListener
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._owned -= {tp.partition for tp in revoked}

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        now = {tp.partition for tp in assigned}
        self._gained |= now - self._owned
        self._owned = now
        self._assigned.set()
        owned = ",".join(map(str, sorted(now))) or "-"
        log_event(log, logging.INFO, "sync partitions assigned", partitions=owned)
