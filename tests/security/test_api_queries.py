"""The API's own queries (issue #12 item 5): bounded ranges, their own limits and engine handle, and a
cached status summary — against the real embedded engine."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamer.errors import QueryError
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink
from streamer.times import now_ms
from tests.integration.query.conftest import T0, Data, LiveServer

POINTS, SAMPLES = 100, 20_000  # 2,000,000 rows at a 60 s interval, a hole every 97 samples


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A store with one site of 600,000 samples, so that a gaps read keeps the engine busy."""
    data_dir: Path = tmp_path_factory.mktemp("big") / "data"
    settings = load_settings(data_dir=data_dir, kafka_bootstrap_servers="127.0.0.1:1", api_sql_max_threads=1)
    with Sink(settings) as sink:
        sink.migrate()
        sink.insert_points(
            [PointRow(site="big", point=f"p{i}", version=1, collect_interval=60) for i in range(POINTS)]
        )
        for i in range(POINTS):
            ts = [T0 + k * 60_000 for k in range(SAMPLES) if k % 97]
            sink.insert_samples(["big"] * len(ts), [f"p{i}"] * len(ts), ts, [1.0] * len(ts), f"big{i}")
    return settings


def test_gaps_over_all_time_is_refused_naming_the_cap(api: LiveServer) -> None:
    """GET /gaps?start=0&end=now answers 400 naming the longest range and its setting, at once."""
    response = httpx.get(f"{api.url}/api/v1/sites/s1/gaps", params={"start": "0", "end": "now"}, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "at most 2678400 s" in error and "STREAMER_API_GAPS_MAX_SPAN_S" in error


async def test_gaps_of_a_big_site_are_exact(big: Settings) -> None:
    """Every point of the big site has its 206 one-sample holes and no other gap (SQL, bounded memory)."""
    service = QueryService(big)
    try:
        answer = await service.gaps("big", TimeRange(T0, T0 + SAMPLES * 60_000), 1.5)
    finally:
        await service.close()
    assert len(answer["points"]) == POINTS
    # sample 0 is missing too, but a 60 s head is no gap at tolerance 1.5
    holes = range(97, SAMPLES, 97)
    expected = [{"start": T0 + (k - 1) * 60_000, "end": T0 + (k + 1) * 60_000, "missing": 1} for k in holes]
    assert len(expected) == 206 and all(p["gaps"] == expected for p in answer["points"])


async def test_the_service_queries_carry_their_own_limits(big: Settings) -> None:
    """A read beyond the service's time limit is a 422 naming max_execution_time and its setting."""
    service = QueryService(big.model_copy(update={"api_query_max_execution_s": 0.001}))
    try:
        with pytest.raises(QueryError, match="max_execution_time exceeded") as info:
            await service.gaps("big", TimeRange(T0, T0 + SAMPLES * 60_000), 1.5)
    finally:
        await service.close()
    assert info.value.status == 422 and "STREAMER_API_QUERY_MAX_EXECUTION_S" in str(info.value)


def _insert_rate(done: list[float], start: float, end: float) -> float:
    return sum(1 for t in done if start <= t < end) / (end - start)


async def test_inserts_keep_their_pace_while_a_heavy_read_runs(big: Settings) -> None:
    """One-row inserts through the Sink keep at least 40 % of their pace while the query service runs
    gaps reads back to back on one thread (measured: ~100 %; on the old shared handle, where inserts
    waited behind every read, 12-20 %)."""
    service = QueryService(big)
    whole = TimeRange(T0, T0 + SAMPLES * 60_000)
    await service.gaps("big", whole, 1.5)  # connect and warm up before measuring
    done: list[float] = []
    stop = threading.Event()
    with Sink(big) as sink:

        def insert_loop() -> None:
            k = 0
            while not stop.is_set():
                sink.insert_samples(["writer"], ["p"], [T0 + k], [1.0], f"w{k}")
                done.append(time.monotonic())
                k += 1

        writer = threading.Thread(target=insert_loop)
        writer.start()
        try:
            await asyncio.sleep(1.0)
            a = time.monotonic()
            await asyncio.sleep(2.0)
            b = time.monotonic()
            for _ in range(4):
                await service.gaps("big", whole, 1.5)
            c = time.monotonic()
            await asyncio.sleep(2.0)
            d = time.monotonic()
        finally:
            stop.set()
            writer.join()
            await service.close()
    alone = (_insert_rate(done, a, b) + _insert_rate(done, c, d)) / 2
    during = _insert_rate(done, b, c)
    assert during >= 0.4 * alone, f"{during:.1f} inserts/s during the reads, {alone:.1f}/s without"


async def test_status_summary_is_cached(
    store: tuple[Settings, Data], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls within api_status_cache_s share one answer (no ClickHouse query); after it, a fresh one."""
    settings = store[0].model_copy(update={"api_status_cache_s": 60.0})
    service = QueryService(settings)
    calls: list[Any] = []
    real = service._rows_sync

    def counting(query: Any) -> list[tuple[Any, ...]]:
        calls.append(query)
        return real(query)

    monkeypatch.setattr(service, "_rows_sync", counting)
    try:
        first = await service.status()
        asked = len(calls)
        polls = await asyncio.gather(*(service.status() for _ in range(5)))
        assert asked > 0 and len(calls) == asked and all(p is first for p in polls)
        monkeypatch.setattr(service, "settings", settings.model_copy(update={"api_status_cache_s": 0.0}))
        service._completeness_cache = None  # its own, longer cache (a day of counts) is not under test here
        fresh = await service.status()
        assert len(calls) > asked and fresh is not first and fresh["generated_at"] <= now_ms()
        # the fresh answer asks again, but for the slower figures kept longer: the exact row counts
        # (EXACT_ROWS_CACHE_S) and the 24 h completeness
        exact = [q for q in calls if "timeseries_raw FINAL GROUP BY site" in q[0]]
        assert len(exact) == 1 and fresh["clickhouse"]["rows"] == first["clickhouse"]["rows"]
    finally:
        await service.close()


async def test_gaps_of_a_big_site_fit_in_a_small_memory_limit(big: Settings) -> None:
    """2,000,000 samples' gaps are computed within 100 MB of query memory, read in the table's order:
    samples are paired as they stream past, never gathered per point, so the memory does not grow
    with the range (the old query held every timestamp of the site: 90 MB was too little for it here)."""
    service = QueryService(big.model_copy(update={"api_query_max_memory_bytes": 100_000_000}))
    try:
        answer = await service.gaps("big", TimeRange(T0, T0 + SAMPLES * 60_000), 1.5)
    finally:
        await service.close()
    assert len(answer["points"]) == POINTS and all(len(p["gaps"]) == 206 for p in answer["points"])
