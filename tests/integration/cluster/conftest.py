"""The three-broker cluster: started once for the cluster tests, on free ports, stopped after them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster.cluster import Cluster, free_base_port


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running three-node KRaft cluster of this test session (never the shared broker on 9092)."""
    cluster = Cluster(free_base_port(), tmp_path_factory.mktemp("kafka-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
