"""tools/kafka/kafka --brokers 3 and topic creation on it: three nodes, replicated topics."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamer.kafka import ensure_topics, resolve_replication
from streamer.settings import Settings
from tests.integration.cluster.cluster import Cluster, describe

pytestmark = pytest.mark.cluster


def test_status_lists_three_running_nodes_and_names_the_controller(kafka_cluster: Cluster) -> None:
    """`status --brokers 3` shows each node running on its own port; `controller` names one of them."""
    lines = kafka_cluster.script("status").stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[f"node={n}", "running"] for n in (1, 2, 3)]
    assert [line.split()[-1] for line in lines] == [f"port={kafka_cluster.port(n)}" for n in (1, 2, 3)]
    assert kafka_cluster.controller() in (1, 2, 3)


async def test_topics_on_three_brokers_get_three_replicas_and_two_insync(
    kafka_cluster: Cluster, base_settings: Settings
) -> None:
    """With STREAMER_REPLICATION_FACTOR unset, topics created on the cluster have 3 replicas per
    partition and min.insync.replicas=2, and the processor's settings resolve to factor 3 (faust's
    own topics)."""
    settings = base_settings.model_copy(update={"kafka_bootstrap_servers": kafka_cluster.bootstrap})
    assert settings.replication_factor is None
    created = await ensure_topics(settings)
    assert (await resolve_replication(settings)).replication_factor == 3
    parts = await describe(kafka_cluster.bootstrap, created)
    assert {len(p["replicas"]) for ps in parts.values() for p in ps} == {3}  # type: ignore[arg-type]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, t, configs={"min.insync.replicas": None})
            for t in created
        ]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    found = {
        r["resource_name"]: {e["config_names"]: e["config_value"] for e in r["config_entries"]}
        for response in responses
        for r in response.to_object()["resources"]
    }
    assert {name: c["min.insync.replicas"] for name, c in found.items()} == dict.fromkeys(created, "2")
