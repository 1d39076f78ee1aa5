"""Kafka helpers: committed offsets wait out a group coordinator that is still loading."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import GroupCoordinatorNotAvailableError, UnknownTopicOrPartitionError
from aiokafka.structs import OffsetAndMetadata

from streamer.errors import KafkaTransientError
from streamer.kafka import group_offsets


class _LoadingAdmin:
    """Answers "coordinator not available" ``pending`` times, as a fresh broker does, then offsets."""

    def __init__(self, pending: int, error: Exception | None = None) -> None:
        self.pending = pending
        self.calls = 0
        self.error = error or GroupCoordinatorNotAvailableError("not yet")

    async def list_consumer_group_offsets(self, group: str) -> dict[TopicPartition, Any]:
        self.calls += 1
        if self.calls <= self.pending:
            raise self.error
        return {TopicPartition("ace.samples", 0): OffsetAndMetadata(42, "")}


async def test_group_offsets_retries_while_coordinator_loads() -> None:
    """Two "not available" answers are waited out and the third call's offsets are returned."""
    admin = _LoadingAdmin(pending=2)
    offsets = await group_offsets(admin, "g", timeout=5, pause=0.01)  # type: ignore[arg-type]
    assert offsets == {TopicPartition("ace.samples", 0): 42}
    assert admin.calls == 3


async def test_group_offsets_gives_up_with_a_transient_error_naming_the_group() -> None:
    """A coordinator that never comes up ends in KafkaTransientError naming the group, not a hang."""
    admin = _LoadingAdmin(pending=10**9)
    with pytest.raises(KafkaTransientError, match="'g'") as info:
        await group_offsets(admin, "g", timeout=0.05, pause=0.01)  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, GroupCoordinatorNotAvailableError)


async def test_group_offsets_does_not_retry_other_errors() -> None:
    """Errors other than a loading coordinator propagate at once."""
    admin = _LoadingAdmin(pending=1, error=UnknownTopicOrPartitionError("gone"))
    with pytest.raises(UnknownTopicOrPartitionError):
        await group_offsets(admin, "g", timeout=5, pause=0.01)  # type: ignore[arg-type]
    assert admin.calls == 1
