"""Gaps found in data the simulator served with a ``--gap`` hole (fetched by the ACE client, stored by the
Sink): exactly the hole comes back, on exactly its point."""

from __future__ import annotations

import dataclasses
import math

from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.processor.normalise import parse_time_ms
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings
from streamer.sim.catalog import catalog_of
from streamer.sim.config import Gap, SimConfig
from streamer.sim.server import run_simulator
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink

START = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
END = START + 2 * 3_600_000
HOLE = (START + 30 * 60_000, START + 45 * 60_000)  # 15 minutes without samples


async def _load(settings: Settings, url: str, site: str) -> dict[str, list[int]]:
    """Fetch points and the window from the simulator and store them through the Sink."""
    ace = settings.model_copy(update={"ace_base_url": url, "ace_token": SecretStr("dev-token")})
    times: dict[str, list[int]] = {}
    async with AceClient(ace) as client:
        points = await client.list_points(site)
        async for page in client.iter_timeseries(site, START, END):
            for sample in page.samples:
                ts = parse_time_ms(sample["time"])
                if ts is not None and START <= ts < END:
                    times.setdefault(sample["name"], []).append(ts)
    with Sink(settings) as sink:
        sink.migrate()
        sink.insert_points(
            [
                PointRow(site=site, point=p.name, version=1, collect_interval=p.collect_interval)
                for p in points
            ]
        )
        names = [n for n in times for _ in times[n]]
        stamps = [t for n in times for t in times[n]]
        sink.insert_samples([site] * len(names), names, stamps, [1.0] * len(names), "sim-window")
    return {name: sorted(set(ts)) for name, ts in times.items()}


async def test_simulator_gap_is_the_only_gap(base_settings: Settings) -> None:
    """A 15-minute --gap on one of three points: gaps lists that point once, from its last sample before
    the hole to its first after, 15 samples missing; the other points have none."""
    site = "s9"
    base = SimConfig(
        sites=(site,),
        points=3,
        extra_share=0.0,
        disabled_share=0.0,
        interval_s=60,
        ms_phase_share=0.0,
        string_share=0.0,
        invalid_share=0.0,
        repeat=0,
    )
    victim = catalog_of(base, site).configured_names()[1]
    config = dataclasses.replace(base, gaps=(Gap(site, victim, *HOLE),))
    async with run_simulator(config) as url:
        times = await _load(base_settings, url, site)
    assert len(times) == 3 and not any(HOLE[0] <= t < HOLE[1] for t in times[victim])
    service = QueryService(base_settings)
    try:
        answer = await service.gaps(site, TimeRange(START, END), 1.5)
    finally:
        await service.close()
    before = max(t for t in times[victim] if t < HOLE[0])
    after = min(t for t in times[victim] if t >= HOLE[1])
    assert answer["points"] == [
        {
            "point_name": victim,
            "collect_interval_s": 60,
            "silent": False,
            "missing": 15,
            "gaps": [{"start": before, "end": after, "missing": 15}],
        }
    ]
    assert HOLE[0] - before <= 60_000 and after - HOLE[1] < 60_000
    assert math.isclose((after - before) / 60_000, 16)
