"""Partitioning of batch-published records: the same partitions Java, faust and aiokafka's send() choose."""

from __future__ import annotations

import pytest

from streamer.producer.publisher import partition_for
from streamer.producer.shard import sites_in

# Hash values of Kafka's own Java test suite (org.apache.kafka.common.utils.UtilsTest#testMurmur2).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("partitions", [1, 4, 8, 13])
def test_partition_matches_java_default_partitioner(partitions: int) -> None:
    """partition = (murmur2(key) & 0x7fffffff) % partitions, with Java's murmur2 values."""
    for key, java_hash in JAVA_MURMUR2.items():
        assert partition_for(key, list(range(partitions))) == (java_hash & 0x7FFFFFFF) % partitions


def test_assigned_sites_splits_sites_between_workers() -> None:
    """Two workers owning disjoint ace.sync partitions sync disjoint sets of sites covering all of them."""
    sites = [f"site_{i}" for i in range(40)]
    partitions = [0, 1, 2, 3]
    first, second = sites_in({0, 1}, partitions), sites_in({2, 3}, partitions)
    mine = {s for s in sites if first(s)}
    theirs = {s for s in sites if second(s)}
    assert mine and theirs
    assert mine.isdisjoint(theirs) and mine | theirs == set(sites)
