"""Criterion 6: two workers in one group split the partitions; the union of their stores is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    dump,
    point_records,
    prepare,
    processor_settings,
    produce,
    sample_records,
    start_processor,
    stop,
    union_totals,
    until_members,
    wait_consumed,
    want,
)

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01", "site_02"), seed=21)
END_MS = START_MS + 15 * 60_000


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
        await until_members(first, 2)  # both in the group before the samples arrive, so they split them
        await produce(first, first.topic_samples, sample_records(CONFIG, START_MS, END_MS, per_record=100))
        await wait_consumed(first, procs, timeout=60)
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], (tmp_path / "w1.log").read_text()[-2000:] + (tmp_path / "w2.log").read_text()[
        -2000:
    ]

    one, two = dump(first), dump(second)
    assert one and two, "one worker loaded nothing: the partitions were not split"
    assert union_totals(one | two) == want(CONFIG, START_MS, END_MS)
