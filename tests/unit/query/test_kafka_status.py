"""Lag arithmetic of the status probe."""

from __future__ import annotations

from aiokafka import TopicPartition

from streamer.query.kafka_status import partition_lags


def test_lag_is_end_minus_committed_or_everything_retained() -> None:
    """Committed partitions lag by end - committed; uncommitted ones by end - beginning; rows sorted."""
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    rows = partition_lags([b0, a1, a0], {a0: 7}, {a0: 0, a1: 3, b0: 0}, {a0: 10, a1: 8, b0: 0})
    assert rows == [
        {"topic": "a", "partition": 0, "committed": 7, "end": 10, "lag": 3},
        {"topic": "a", "partition": 1, "committed": None, "end": 8, "lag": 5},
        {"topic": "b", "partition": 0, "committed": None, "end": 0, "lag": 0},
    ]


def test_negative_committed_offset_means_none_committed() -> None:
    """aiokafka reports -1 for a partition without a commit: count from the beginning offset."""
    tp = TopicPartition("a", 0)
    assert partition_lags([tp], {tp: -1}, {tp: 2}, {tp: 9})[0]["lag"] == 7
