"""The DLQ writer's producer keeps the metadata of its own topics only, not of the whole cluster."""

from __future__ import annotations

import pytest

from streamer.kafka import ensure_topics
from streamer.processor.dlq import DlqWriter
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
