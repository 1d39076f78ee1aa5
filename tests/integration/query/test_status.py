"""Pipeline status and health: sync runs from ClickHouse, lag and DLQ depth from the real broker."""

from __future__ import annotations

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streamer.kafka import ensure_topics, reliable_producer
from streamer.query.service import QueryService
from streamer.settings import Settings
from streamer.sink.migrations import load_migrations
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, Data, LiveServer, fill

END = T0 + SPAN_MIN * MINUTE


async def _produce(settings: Settings, topic: str, partition: int, count: int) -> None:
    producer = reliable_producer(settings)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, b"{}", key=f"k{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def _commit(settings: Settings, topic: str, partition: int, offset: int) -> None:
    """Commit an offset for the processor's group, as faust would after an insert."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.processor_app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_status_reports_sync_lag_dlq_and_rows(kafka_settings: Settings) -> None:
    """5 samples records, 3 committed by the group -> lag 2 on that partition; 4 DLQ records -> depth 4;
    per site the newest ok window is the watermark and the failed run is the last error."""
    settings = kafka_settings
    data = fill(settings)
    await ensure_topics(settings)
    await _produce(settings, settings.topic_samples, 1, 5)
    await _produce(settings, settings.topic_dlq, 0, 4)
    await _commit(settings, settings.topic_samples, 1, 3)
    service = QueryService(settings)
    try:
        status = await service.status()
        health = await service.health()
    finally:
        await service.close()
    kafka = status["kafka"]
    assert kafka["reachable"] and kafka["dlq_depth"] == 4 and kafka["total_lag"] == 2
    lags = {(p["topic"], p["partition"]): (p["committed"], p["lag"]) for p in kafka["partitions"]}
    assert lags[(settings.topic_samples, 1)] == (3, 2)
    # the topics the processor group consumes: ace.samples and ace.sync_runs (ace.points is read group-less)
    assert len(lags) == settings.samples_partitions + settings.sync_partitions
    assert {topic for topic, _ in lags} == {settings.topic_samples, settings.topic_sync_runs}
    sites = {s["site"]: s for s in status["sites"]}
    assert sites["s1"]["watermark"] == END and sites["s1"]["last_status"] == "ok"
    assert sites["s1"]["last_error"] is None and sites["s1"]["last_sync_id"] == "r2"
    assert sites["s2"]["last_status"] == "failed" and sites["s2"]["watermark"] == END
    assert sites["s2"]["last_error"] == "AceTransientError: 503 from the API"
    assert sites["s2"]["last_error_at"] == END + 2_000
    inserted = {site: sum(len(v) for (s, _), v in data.samples.items() if s == site) for site in ("s1", "s2")}
    # exact: the replayed hour's 60 duplicates are not counted; stored rows before merges hold them
    assert sites["s1"]["rows"] == inserted["s1"] and sites["s1"]["rows_stored"] == inserted["s1"] + 60
    assert sites["s2"]["rows"] == sites["s2"]["rows_stored"] == inserted["s2"] and sites["s1"]["points"] == 3
    assert status["clickhouse"]["rows"] == inserted["s1"] + inserted["s2"]
    assert status["clickhouse"]["schema_version"] == max(m.version for m in load_migrations())
    assert health["status"] == "ok" and health["consumer_lag"] == 2 and health["dlq_depth"] == 4


def test_health_without_kafka_is_degraded_but_serving(
    live: LiveServer, filled: tuple[Settings, Data]
) -> None:
    """Kafka unreachable (the fixture points at port 1): /health answers 200 'degraded' (no details to
    an anonymous caller), and /api/v1/status names Kafka and still reports ClickHouse's side."""
    health = httpx.get(f"{live.url}/health", timeout=30)
    assert health.status_code == 200
    assert health.json() == {"status": "degraded"}
    status = httpx.get(f"{live.url}/api/v1/status", timeout=30).json()
    assert status["kafka"]["reachable"] is False and "127.0.0.1:1" in status["kafka"]["error"]
    assert status["clickhouse"]["reachable"] is True
    assert status["kafka"]["total_lag"] is None and [s["site"] for s in status["sites"]] == ["s1", "s2"]


def test_health_without_clickhouse_is_503(base_settings: Settings) -> None:
    """A ClickHouse server nobody runs: /health is 503 'down' and data routes 503 with the reason."""
    settings = base_settings.model_copy(
        update={"clickhouse_url": "http://127.0.0.1:1", "kafka_bootstrap_servers": "127.0.0.1:1"}
    )
    with LiveServer(settings) as live:
        health = httpx.get(f"{live.url}/health", timeout=60)
        assert health.status_code == 503 and health.json()["status"] == "down"
        sites = httpx.get(f"{live.url}/api/v1/sites", timeout=60)
        assert sites.status_code == 503 and "ClickHouse" in sites.json()["error"]
