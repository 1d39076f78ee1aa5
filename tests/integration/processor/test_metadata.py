"""The processor's idle producers keep the metadata of their own topics only, not of the whole cluster."""

from __future__ import annotations

from typing import cast

import pytest

from streamer.kafka import ensure_topics
from streamer.processor.app import create_app
from streamer.processor.dlq import DlqWriter
from streamer.processor.faust_seam import SeamProducer
from streamer.settings import Settings

pytestmark = pytest.mark.kafka


async def test_the_dlq_writer_refreshes_only_its_topics_metadata(kafka_settings: Settings) -> None:
    """Before any dead letter, a metadata refresh of the DLQ writer's producer asks for ace.dlq and
    ace.dlq_state alone (an idle aiokafka producer asks for every topic of the broker, each refresh)."""
    await ensure_topics(kafka_settings)
    writer = DlqWriter(kafka_settings)
    await writer.start()
    try:
        client = writer._producer.client
        await client.force_metadata_update()
        topics = client.cluster.topics()
    finally:
        await writer.stop()
    assert topics == {kafka_settings.topic_dlq, kafka_settings.topic_dlq_state}


async def test_fausts_own_producer_refreshes_only_the_processors_topics_metadata(
    kafka_settings: Settings,
) -> None:
    """faust's producer in a processor app, which never sends, refreshes the metadata of the topics the
    processor consumes alone; the broker's other topics (the sync state, the points, the DLQ) are not
    in it."""
    await ensure_topics(kafka_settings)
    app = create_app(kafka_settings, sink_factory=lambda: None, query_api=False).app
    producer = app.producer
    await producer.start()
    try:
        started = cast(SeamProducer, producer)._producer
        assert started is not None
        client = started.client
        await client.force_metadata_update()
        topics = client.cluster.topics()
    finally:
        await producer.stop()
    assert topics == {kafka_settings.topic_samples, kafka_settings.topic_sync_runs}
