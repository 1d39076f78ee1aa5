"""A migrated embedded ClickHouse filled through the real Sink, and a live query API on a thread.

The data set (``DATA``) is built so that every answer is known in advance: two sites, points with
tags and collect intervals, millisecond timestamps, a replayed batch (duplicates that must collapse),
and one point with two holes.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from streamer.models import SyncRun
from streamer.query.api import build_app
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000  # 2023-11-14T22:00:00Z, an hour boundary
MINUTE = 60_000
SPAN_MIN = 180  # three hours of samples
GAPS = {"s1/gappy": [(40, 50), (100, 103)]}  # minutes (inclusive..exclusive) with no sample


def value_of(point: str, i: int) -> float:
    base = {"temp": 70.0, "fan": 40.0, "gappy": 5.0, "other": 1.0}[point.split("/")[-1]]
    return round(base + 5 * math.sin(i / 15) + (i % 7) * 0.125, 6)


@dataclass
class Data:
    """What was inserted: (site, point) -> [(ts_ms, value)] (after duplicate collapse)."""

    samples: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)

    def series(self, site: str, point: str, start: int, end: int) -> list[tuple[int, float]]:
        return [(t, v) for t, v in self.samples[(site, point)] if start <= t < end]


def _series(site: str, point: str) -> list[tuple[int, float]]:
    holes = GAPS.get(f"{site}/{point}", [])
    out = []
    for i in range(SPAN_MIN):
        if any(a <= i < b for a, b in holes):
            continue
        # a few milliseconds off the minute: the API must keep milliseconds (the seed truncated them)
        out.append((T0 + i * MINUTE + (i % 3) * 7, value_of(point, i)))
    return out


# site -> point -> (marker tags, unit)
POINTS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "s1": {
        "temp": (("ahu", "temp", "sensor"), "degF"),
        "fan": (("ahu", "fan"), "%"),
        "gappy": (("vav", "temp"), "degF"),
    },
    "s2": {"other": (("meter",), "kW")},
}


def fill(settings: Settings) -> Data:
    """Migrate, then insert points, samples (one batch replayed), and sync runs through the Sink."""
    data = Data()
    with Sink(settings) as sink:
        sink.migrate()
        rows = [
            PointRow(
                site=site,
                point=point,
                version=1,
                collect_interval=60,
                unit=unit,
                marker_tags=tags,
                kv_tags=(("unit", unit),),
                point_type="analog",
                metadata='{"bacnet_data": {"device_id": 7}}',
            )
            for site, points in POINTS.items()
            for point, (tags, unit) in points.items()
        ]
        # a removed point: still known (its samples stay queryable), no longer listed
        rows += [PointRow.tombstone("s1", "fan_old", 2), PointRow(site="s1", point="fan_old", version=1)]
        sink.insert_points(rows)
        for site, points in POINTS.items():
            for point in points:
                series = _series(site, point)
                data.samples[(site, point)] = series
                _insert(sink, site, point, series, f"{site}/{point}")
        # a replay of the first hour of s1/temp from another batch: must not change any answer
        _insert(sink, "s1", "temp", data.samples[("s1", "temp")][:60], "replay")
        sink.insert_sync_runs(_runs())
    return data


def _insert(sink: Sink, site: str, point: str, series: list[tuple[int, float]], token: str) -> None:
    n = len(series)
    sink.insert_samples([site] * n, [point] * n, [t for t, _ in series], [v for _, v in series], token)


def _runs() -> list[SyncRun]:
    def run(sync_id: str, site: str, end: int, status: str, error: str | None, started: int) -> SyncRun:
        return SyncRun(
            sync_id=sync_id,
            site=site,
            window_start_ms=end - 3_600_000,
            window_end_ms=end,
            kind="incremental",
            started_at_ms=started,
            duration_ms=900,
            api_calls=3,
            pages=2,
            samples_fetched=100,
            records_published=4,
            samples_published=100,
            errors=0 if status == "ok" else 1,
            status=status,
            error=error,
        )

    end = T0 + SPAN_MIN * MINUTE
    return [
        run("r1", "s1", end - 3_600_000, "ok", None, end - 3_000_000),
        run("r2", "s1", end, "ok", None, end + 1_000),
        run("r3", "s2", end, "ok", None, end - 10_000),
        run("r4", "s2", end + 3_600_000, "failed", "AceTransientError: 503 from the API", end + 2_000),
    ]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Data]:
    """Settings of a private, migrated, filled store (one per test module: migrating costs ~1 s)."""
    data_dir: Path = tmp_path_factory.mktemp("query") / "data"
    settings = load_settings(data_dir=data_dir, kafka_bootstrap_servers="127.0.0.1:1")
    return settings, fill(settings)


@pytest.fixture
async def service(filled: tuple[Settings, Data]) -> AsyncIterator[QueryService]:
    svc = QueryService(filled[0])
    yield svc
    await svc.close()


class LiveServer:
    """The stand-alone API on 127.0.0.1:<free port>, served by its own event loop on a thread, so a
    blocking client (schemathesis, a subprocess wait) cannot stall it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="query-api", daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(build_app(self.settings, QueryService(self.settings)), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        assert self._ready.wait(30), "query API did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture
def live(filled: tuple[Settings, Data]) -> Iterator[LiveServer]:
    with LiveServer(filled[0]) as server:
        yield server
