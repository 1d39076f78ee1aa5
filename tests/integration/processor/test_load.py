"""Criterion 1: what lands in ClickHouse is exactly the configured, enabled, valid input."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.models import SyncRun
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    Record,
    check,
    clickhouse,
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

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01", "site_02"), seed=5)
END_MS = START_MS + 30 * 60_000


async def test_two_sites_land_exactly_the_expected_samples(kafka_settings: Settings, tmp_path: Path) -> None:
    """Two simulated sites x 4,583 points, with repeated records: count FINAL, distinct keys, value sum
    and key checksum equal the simulator's expected() for configured, enabled, valid samples."""
    settings = processor_settings(kafka_settings)
    await prepare(settings)
    await produce(settings, settings.topic_points, point_records(CONFIG))
    records = sample_records(CONFIG, START_MS, END_MS, per_record=500)
    await produce(settings, settings.topic_samples, records + records[::9])  # overlap: repeats collapse
    runs = [sync_run(site, i) for site in CONFIG.sites for i in range(2)]
    await produce(settings, settings.topic_sync_runs, runs + runs[:1])  # a re-recorded run replaces itself
    proc = start_processor(settings, tmp_path / "processor.log")
    try:
        await wait_consumed(settings, [proc], timeout=60)
        await wait_consumed(settings, [proc], topic=settings.topic_sync_runs)
        freshness = scrape_freshness(settings)
    finally:
        assert stop(proc) == 0, (tmp_path / "processor.log").read_text()[-3000:]

    assert check(settings) == want(CONFIG, START_MS, END_MS)
    enabled = sum(1 for _, v in point_records(CONFIG) if v is not None and b'"collect_enabled":true' in v)
    db = settings.clickhouse_database
    points = clickhouse(settings, f"SELECT count(), countIf(collect_enabled = 1) FROM {db}.points FINAL")
    assert points == [[len(point_records(CONFIG)), enabled]]
    assert await read_all(settings, settings.topic_dlq) == []
    assert clickhouse(settings, f"SELECT count(), uniqExact(sync_id) FROM {db}.sync_runs FINAL") == [[4, 4]]
    # One freshness observation per inserted record (repeats too); the samples are from 2024, so
    # every one of them is older than the largest finite bucket.
    assert freshness == {"count": records_with_valid_samples(records + records[::9]), "le_7200": 0}


def scrape_freshness(settings: Settings) -> dict[str, int]:
    """The running processor's freshness histogram, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{settings.processor_web_port}/metrics", timeout=10).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "streamer_freshness_seconds"]
    values = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    return {
        "count": int(values[("streamer_freshness_seconds_count", None)]),
        "le_7200": int(values[("streamer_freshness_seconds_bucket", "7200.0")]),
    }


def records_with_valid_samples(records: list[Record]) -> int:
    """Records of configured, enabled points holding at least one valid value (ace-api.md's rules)."""
    enabled = {k for k, v in point_records(CONFIG) if v is not None and orjson.loads(v)["collect_enabled"]}
    return len(
        [
            key
            for key, value in records
            if key in enabled
            and value is not None
            and any(_valid(v) for _, v in orjson.loads(value)["samples"])
        ]
    )


def _valid(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def sync_run(site: str, i: int) -> Record:
    run = SyncRun(
        sync_id=f"{site}-{i}",
        site=site,
        window_start_ms=START_MS + i * 3_600_000,
        window_end_ms=START_MS + (i + 1) * 3_600_000,
        kind="backfill",
        started_at_ms=START_MS,
        duration_ms=1234,
        api_calls=3,
        pages=2,
        samples_fetched=100,
        records_published=10,
        samples_published=90,
        errors=0,
        status="ok",
    )
    return site.encode(), run.model_dump_json().encode()
