"""Criterion 5: ClickHouse failing for real for 10 s (table detached) loses no row and DLQs none."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    check,
    point_records,
    prepare,
    processor_settings,
    produce,
    read_all,
    sample_records,
    start_processor,
    stop,
    wait_consumed,
    want,
)
from tests.integration.processor.test_dlq import fault

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01",), points=1000, seed=13)
END_MS = START_MS + 2 * 3_600_000


async def test_a_ten_second_clickhouse_outage_pauses_and_loses_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """timeseries_raw is detached inside the processor for 10 s while records keep arriving: inserts
    fail (UNKNOWN_TABLE) and are retried; afterwards the data is exact and the DLQ is empty."""
    settings = processor_settings(kafka_settings, processor_fault_hooks=True, sink_retry_max_backoff_s=1.0)
    log = tmp_path / "processor.log"
    records = sample_records(CONFIG, START_MS, END_MS, per_record=300)
    half = len(records) // 2
    await prepare(settings)
    await produce(settings, settings.topic_points, point_records(CONFIG))
    proc = start_processor(settings, log)
    try:
        await produce(settings, settings.topic_samples, records[:half])
        await wait_consumed(settings, [proc])
        await fault(settings, "detach", table="timeseries_raw", seconds="10")
        await produce(settings, settings.topic_samples, records[half:])
        await wait_consumed(settings, [proc], timeout=60)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "UNKNOWN_TABLE" in text and "transient failure" in text, "the outage did not hit an insert"
    assert check(settings) == want(CONFIG, START_MS, END_MS)
    assert await read_all(settings, settings.topic_dlq) == []
