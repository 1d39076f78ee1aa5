"""Topic specs: replication and min.insync.replicas follow the cluster, single-broker topics unchanged."""

from __future__ import annotations

from streamer.kafka import min_insync_replicas, replication_for, resolve_replication, topic_specs
from streamer.settings import Settings


def test_three_brokers_or_more_replicate_three_times_else_once() -> None:
    """Unset, the factor is 3 from three brokers up and 1 below: a 3-replica topic on two brokers
    would stop taking acks=all writes (min.insync 2) as soon as one of them is lost."""
    assert [replication_for(n) for n in (1, 2, 3, 4, 7)] == [1, 1, 3, 3, 3]
    assert [min_insync_replicas(rf) for rf in (1, 2, 3, 5)] == [1, 2, 2, 2]


def test_cluster_specs_have_factor_three_and_two_insync_replicas_on_every_topic(
    base_settings: Settings,
) -> None:
    """With factor 3 every topic (samples, points, sync, sync_runs, dlq, dlq_state) is created with
    3 replicas and min.insync.replicas=2, and keeps its partitions and cleanup policy."""
    settings = base_settings.model_copy(update={"samples_partitions": 8, "sync_partitions": 4})
    specs = topic_specs(settings, 3)
    assert len(specs) == 6
    assert {(s.replication_factor, s.config["min.insync.replicas"]) for s in specs} == {(3, "2")}
    by_name = {s.name: s for s in specs}
    assert by_name[settings.topic_samples].partitions == 8
    assert by_name[settings.topic_samples].config["cleanup.policy"] == "delete"
    assert by_name[settings.topic_points].config["cleanup.policy"] == "compact"
    assert by_name[settings.topic_sync].partitions == 4


def test_single_broker_specs_are_unreplicated(base_settings: Settings) -> None:
    """Factor unset and nothing detected: one replica, min.insync.replicas=1, today's policies."""
    settings = base_settings
    specs = topic_specs(settings)
    assert {(s.replication_factor, s.config["min.insync.replicas"]) for s in specs} == {(1, "1")}
    samples = next(s for s in specs if s.name == settings.topic_samples)
    assert samples.config["retention.ms"] == str(settings.samples_retention_ms)


def test_configured_factor_wins_over_the_detected_one(base_settings: Settings) -> None:
    """STREAMER_REPLICATION_FACTOR set: the specs use it, with min.insync.replicas 2 at factor 2."""
    settings = base_settings.model_copy(update={"replication_factor": 2})
    assert {(s.replication_factor, s.config["min.insync.replicas"]) for s in topic_specs(settings)} == {
        (2, "2")
    }


async def test_resolve_replication_keeps_a_configured_factor_without_asking_kafka(
    base_settings: Settings,
) -> None:
    """A configured factor is returned as is; no broker is contacted (none listens on port 1)."""
    update = {"replication_factor": 3, "kafka_bootstrap_servers": "127.0.0.1:1"}
    settings = base_settings.model_copy(update=update)
    assert (await resolve_replication(settings)).replication_factor == 3
