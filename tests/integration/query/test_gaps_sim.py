"""Gaps found in data the simulator served with a ``--gap`` hole (fetched by the ACE client, stored by the
Sink): exactly the hole comes back, on exactly its point."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from streamer.ace.client import AceClient
from streamer.ace.pagination import sample_fields
from streamer.models import SyncRun
from streamer.producer.points import point_record
from streamer.query import render
from streamer.query.params import GAP_TOLERANCE, TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings
from streamer.sim.catalog import catalog_of
from streamer.sim.config import Gap, SimConfig
from streamer.sim.model import NULL, window_samples, window_total
from streamer.sim.server import run_simulator
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink
from streamer.times import iso_to_ms as parse_time_ms

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
                fields = sample_fields(sample)
                assert fields is not None
                name, time, _ = fields
                ts = parse_time_ms(time)
                if ts is not None and START <= ts < END:
                    times.setdefault(name, []).append(ts)
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


# ------------------------------------------------------------------ a default site's hour, summarised
MINUTE = 60_000
WATERMARK = START + 50 * MINUTE + 17_000  # the end of the site's newest ok window
ASKED_END = START + 2 * 3_600_000  # "now": the range runs on past the watermark


def _chosen(names: list[str]) -> dict[str, list[str]]:
    """Points of the default catalog given holes: in the hour, silent, after the watermark, across it."""
    return {"hole": names[10:13], "silent": names[20:22], "after": names[30:33], "across": names[40:41]}


def _holes(site: str, chosen: dict[str, list[str]]) -> tuple[Gap, ...]:
    spans = {
        "hole": (START + 10 * MINUTE, START + 20 * MINUTE),
        "silent": (START - 3_600_000, ASKED_END),
        "after": (WATERMARK + MINUTE, ASKED_END),
        "across": (START + 45 * MINUTE, ASKED_END),
    }
    return tuple(Gap(site, name, *spans[kind]) for kind, names in chosen.items() for name in names)


def _store(settings: Settings, config: SimConfig, site: str, listed: list[PointRow]) -> dict[str, list[int]]:
    """What the processor stores for [START, ASKED_END): valid samples of configured, collected
    points (the simulator's own account, which the end-to-end tests hold the pipeline to), the points
    as the producer maps the listing, and one ok window ending at the watermark (and a repair
    window ending after it, which does not move it)."""
    cat = catalog_of(config, site)
    total = window_total(config, cat, START, ASKED_END)
    samples = window_samples(config, site, START, ASKED_END, "grouped", 0, total)
    collected = {p.point for p in listed}
    keep = [
        i
        for i, (j, kind) in enumerate(zip(samples.j.tolist(), samples.kind.tolist(), strict=True))
        if kind < NULL and cat.names[j] in collected
    ]
    names = [cat.names[samples.j[i]] for i in keep]
    stamps = [int(samples.t_ms[i]) for i in keep]
    times: dict[str, list[int]] = {}
    for name, ts in zip(names, stamps, strict=True):
        times.setdefault(name, []).append(ts)
    runs = [
        _run("w1", site, START - 3_600_000, WATERMARK, "incremental"),
        _run("r1", site, START + 55 * MINUTE, START + 65 * MINUTE, "repair"),
    ]
    with Sink(settings) as sink:
        sink.migrate()
        sink.insert_points(listed)
        sink.insert_samples([site] * len(names), names, stamps, [1.0] * len(names), "hour")
        sink.insert_sync_runs(runs)
    return times


def _run(sync_id: str, site: str, start: int, end: int, kind: str) -> SyncRun:
    return SyncRun(
        sync_id=sync_id, site=site, window_start_ms=start, window_end_ms=end, kind=kind,
        started_at_ms=end, duration_ms=1, api_calls=1, pages=1, samples_fetched=1, records_published=1,
        samples_published=1, errors=0, status="ok", error=None,
    )  # fmt: skip


def _oracle(times: dict[str, list[int]], judged: dict[str, int], tolerance: float) -> dict[str, Any]:
    """The documented rule applied to the simulator's samples: spans between consecutive samples,
    the range start and the watermark counting as samples, longer than ``tolerance`` intervals."""
    gapped: dict[str, int] = {}
    silent = set()
    for name, interval_s in judged.items():
        stamps = [t for t in times.get(name, []) if t < WATERMARK]
        if not stamps:
            silent.add(name)
            continue
        edges = [START, *stamps, WATERMARK]
        interval = interval_s * 1000
        missing = [
            max(1, round((b - a) / interval) - 1)
            for a, b in itertools.pairwise(edges)
            if b - a > tolerance * interval
        ]
        if missing:
            gapped[name] = sum(missing)
    return {"gapped": gapped, "silent": silent}


async def test_a_default_site_hour_is_summarised_exactly(base_settings: Settings) -> None:
    """One hour of the default simulated site (4,583 points, 2 % invalid samples, 5 % without a
    collect_interval) with holes: the summary counts are exactly the simulator's, single rejected
    samples are no gap, nothing after the watermark is reported, and the table stays short."""
    site = "site_01"
    plain = SimConfig(sites=(site,))
    chosen = _chosen([p for p in catalog_of(plain, site).configured_names()])
    config = dataclasses.replace(plain, gaps=_holes(site, chosen))
    ace = base_settings.model_copy(update={"ace_token": SecretStr("dev-token")})
    async with (
        run_simulator(config) as url,
        AceClient(ace.model_copy(update={"ace_base_url": url})) as client,
    ):
        points = await client.list_points(site)
    listed = [PointRow.from_record(point_record(site, p, 1)) for p in points if p.collect_enabled]
    judged = {p.point: p.collect_interval for p in listed if p.collect_interval}
    assert {n for names in chosen.values() for n in names} <= set(judged) and len(judged) < len(listed)
    times = _store(base_settings, config, site, listed)
    service = QueryService(base_settings)
    try:
        answer = await service.gaps(site, TimeRange(START, ASKED_END), GAP_TOLERANCE)
        strict = await service.gaps(site, TimeRange(START, ASKED_END), 1.5)
    finally:
        await service.close()
    want = _oracle(times, judged, GAP_TOLERANCE)
    assert (answer["until"], answer["until_source"]) == (WATERMARK, "watermark")
    assert want["silent"] == set(chosen["silent"])
    assert set(chosen["hole"]) | set(chosen["across"]) <= set(want["gapped"])
    assert answer["summary"] | {"worst": None} == {
        "points_judged": len(judged),
        "complete": len(judged) - len(want["gapped"]) - len(want["silent"]),
        "with_gaps": len(want["gapped"]),
        "silent": len(want["silent"]),
        "not_judged": len(listed) - len(judged),
        "missing_samples": sum(want["gapped"].values())
        + len(want["silent"]) * (round((WATERMARK - START) / MINUTE) - 1),
        "worst": None,
    }
    listed_gaps = {p["point_name"]: p["missing"] for p in answer["points"] if not p["silent"]}
    assert listed_gaps == want["gapped"]
    # nothing after the watermark: no span ends later, the holes that start after it are not there
    assert all(g["end"] <= WATERMARK for p in answer["points"] for g in p["gaps"])
    assert not set(chosen["after"]) & {p["point_name"] for p in answer["points"]}
    # the old rule (1.5 intervals) made every single rejected sample a gap: hundreds of points
    assert (
        strict["summary"]["with_gaps"]
        == len(_oracle(times, judged, 1.5)["gapped"])
        > 10 * len(want["gapped"])
    )
    console = Console(record=True, width=200)
    console.print(render.gaps_view(answer))
    lines = console.export_text().splitlines()
    assert len(lines) <= render.GAPS_LIMIT + 12 and f"{len(want['gapped'])} with gaps" in lines[2]
