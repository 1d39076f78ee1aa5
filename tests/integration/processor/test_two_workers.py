"""Criterion 6: two workers in one group split the partitions; the union of their stores is exact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    point_records,
    prepare,
    processor_settings,
    produce,
    sample_records,
    start_processor,
    stop,
    wait_consumed,
    want,
)

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01", "site_02"), seed=21)
END_MS = START_MS + 15 * 60_000

DUMP = (
    "import sys, json, clickhouse_connect\n"
    "c = clickhouse_connect.get_client(dsn=sys.argv[1])\n"
    "q = 'SELECT site, point, toUnixTimestamp64Milli(ts), toInt64(round(value * 1000)) FROM ' + sys.argv[2]\n"
    "print(json.dumps(c.query(q + '.timeseries_raw FINAL').result_rows))\n"
)


def dump(settings: Settings) -> set[tuple[str, str, int, int]]:
    """Every row of one worker's store (read in a child process: one process per chdb directory)."""
    args = [sys.executable, "-c", DUMP, settings.resolved_clickhouse_url, settings.clickhouse_database]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {(s, p, int(t), int(v)) for s, p, t, v in json.loads(done.stdout)}


async def members(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([settings.processor_app_id])
    finally:
        await admin.close()
    group = response.to_object()["groups"][0]
    return len(group["members"]) if group["state"] == "Stable" else 0


async def test_two_workers_split_the_work_and_their_union_is_exact(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Both workers (own chdb directories) load rows, and the union of their stores has exactly the
    expected samples: count, value sum and key checksum of expected()."""
    first = processor_settings(kafka_settings, data_dir=tmp_path / "w1")
    second = processor_settings(kafka_settings, data_dir=tmp_path / "w2")
    await prepare(first)
    await prepare(second)
    await produce(first, first.topic_points, point_records(CONFIG))
    procs = [start_processor(first, tmp_path / "w1.log"), start_processor(second, tmp_path / "w2.log")]
    try:
        for _ in range(300):  # both in the group before the samples arrive, so they split them
            if await members(first) == 2:
                break
            await asyncio.sleep(0.1)
        await produce(first, first.topic_samples, sample_records(CONFIG, START_MS, END_MS, per_record=100))
        await wait_consumed(first, procs, timeout=60)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], (tmp_path / "w1.log").read_text()[-2000:] + (tmp_path / "w2.log").read_text()[
        -2000:
    ]

    one, two = dump(first), dump(second)
    assert one and two, "one worker loaded nothing: the partitions were not split"
    union = one | two
    count, _, milli, checksum = want(CONFIG, START_MS, END_MS)
    assert len(union) == count
    assert sum(v for *_, v in union) == milli
    assert sum(zlib.crc32(f"{s}/{p}@{t}".encode()) for s, p, t, _ in union) == checksum
