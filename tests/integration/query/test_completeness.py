"""Completeness (migration 007) over the real embedded ClickHouse: exact under duplicate inserts,
capped per point, whole hours, and the repair columns of the status answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from rich.console import Console

from streamer.errors import QueryError
from streamer.models import SyncRun
from streamer.query import render
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink
from streamer.times import now_ms
from tests.integration.query.conftest import MINUTE, T0, Data, LiveServer

HOUR = 3_600_000


async def test_completeness_counts_distinct_samples_per_hour(service: QueryService) -> None:
    """s1 promises 3 points x 60 a minute; the holes of s1/gappy (10 then 3 minutes) are what is
    missing, and the replayed hour of s1/temp counts once."""
    answer = await service.completeness("s1", TimeRange(T0 + 5 * MINUTE, T0 + 3 * HOUR - MINUTE))
    assert (answer["start"], answer["end"]) == (T0, T0 + 3 * HOUR)  # widened to whole hours
    assert (answer["points"], answer["expected_per_hour"]) == (3, 180)
    assert [(h["hour"], h["stored"]) for h in answer["hours"]] == [
        (T0, 170),
        (T0 + HOUR, 177),
        (T0 + 2 * HOUR, 180),
    ]
    assert answer["hours"][0]["completeness"] == pytest.approx(170 / 180, abs=1e-6)
    assert (answer["stored"], answer["expected"]) == (527, 540)
    empty = await service.completeness("s1", TimeRange(T0 + 3 * HOUR, T0 + 4 * HOUR))
    assert empty["hours"] == [
        {"hour": T0 + 3 * HOUR, "stored": 0, "samples": 0, "expected": 180, "completeness": 0.0}
    ]


async def test_samples_count_every_point_uncapped(tmp_path: Path) -> None:
    """``samples`` of an hour holds every distinct sample stored (a point without a collect_interval,
    a point sending faster than promised, a replayed batch once), ``stored`` only the capped, judged
    part: a repair's recovered samples are measured by the first, its need by the second."""
    settings = load_settings(data_dir=tmp_path / "data", kafka_bootstrap_servers="127.0.0.1:1")
    promised = {"judged": 60, "fast": 120, "free": None}  # free: the vendor listed a null interval
    with Sink(settings) as sink:
        sink.migrate()
        sink.insert_points(
            [PointRow(site="s9", point=p, version=1, collect_interval=i) for p, i in promised.items()]
        )
        for point, step, n in (("judged", MINUTE, 50), ("fast", MINUTE, 60), ("free", 30_000, 100)):
            for token in (point, f"{point}-replay"):
                times = [T0 + i * step for i in range(n)]
                sink.insert_samples(["s9"] * n, [point] * n, times, [1.0] * n, token)
    service = QueryService(settings)
    try:
        answer = await service.completeness("s9", TimeRange(T0, T0 + 2 * HOUR))
    finally:
        await service.close()
    assert (answer["points"], answer["expected_per_hour"]) == (2, 90)
    assert [(h["stored"], h["samples"]) for h in answer["hours"]] == [(50 + 30, 50 + 60 + 100), (0, 0)]
    assert answer["stored"] == 80


async def test_completeness_refuses_unknown_sites_and_huge_ranges(service: QueryService) -> None:
    """An unknown site is a 404, a range beyond 31 days a 400 (one answer holds every hour)."""
    with pytest.raises(QueryError) as unknown:
        await service.completeness("nope", TimeRange(T0, T0 + HOUR))
    assert unknown.value.status == 404
    with pytest.raises(QueryError) as huge:
        await service.completeness("s1", TimeRange(T0, T0 + 32 * 24 * HOUR))
    assert huge.value.status == 400


def test_completeness_over_http(live: LiveServer) -> None:
    """GET /api/v1/sites/{site}/completeness answers what the service does."""
    answer = httpx.get(
        f"{live.url}/api/v1/sites/s2/completeness", params={"start": T0, "end": T0 + 2 * HOUR}
    ).json()
    assert [h["stored"] for h in answer["hours"]] == [60, 60]
    assert answer["completeness"] == 1.0


async def test_status_shows_completeness_and_repairs(filled: tuple[Settings, Data]) -> None:
    """Status per site: completeness of the last 24 whole hours, repair windows, requests, recovered."""
    settings, _ = filled
    now = now_ms()
    hour = now - now % HOUR - HOUR
    with Sink(settings) as sink:
        n = 30
        sink.insert_samples(
            ["s2"] * n, ["other"] * n, [hour + i * MINUTE for i in range(n)], [1.0] * n, "late"
        )
        runs = [_repair_run(f"rep{i}", hour, now, recovered=10 * i, calls=i + 2) for i in (1, 2)]
        sink.insert_sync_runs(runs)
    service = QueryService(settings)
    try:
        status = await service.status()
    finally:
        await service.close()
    s2 = next(s for s in status["sites"] if s["site"] == "s2")
    assert s2["completeness_24h"] == pytest.approx(30 / (24 * 60), abs=1e-6)
    assert (s2["repair_windows_24h"], s2["repair_api_calls_24h"], s2["samples_recovered_24h"]) == (2, 7, 30)
    s1 = next(s for s in status["sites"] if s["site"] == "s1")
    assert (s1["completeness_24h"], s1["repair_windows_24h"]) == (0.0, 0)
    console = Console(width=250, record=True)
    console.print(render.status_view(status))
    table = console.export_text()
    assert "complete 24h" in table and "2.08 %" in table  # what `streamer status` prints


def _repair_run(sync_id: str, hour: int, now: int, *, recovered: int, calls: int) -> SyncRun:
    return SyncRun(
        sync_id=sync_id,
        site="s2",
        window_start_ms=hour,
        window_end_ms=hour + HOUR,
        kind="repair",
        started_at_ms=now - 1000,
        duration_ms=10,
        api_calls=calls,
        pages=calls,
        samples_fetched=30,
        records_published=1,
        samples_published=30,
        errors=0,
        status="ok",
        samples_recovered=recovered,
    )
