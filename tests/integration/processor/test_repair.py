"""Issue #10 acceptance: the repair loop against the simulator, the real broker and a real processor
(embedded ClickHouse), with the simulator's and the producer's clocks stepped together.

Site ``a`` loses two hours to a WAN outage whose samples reach the API three hours late; site ``b``
has a permanent one-point gap. The producer runs its ordinary cycles every 20 simulated minutes with
the repair loop on (ages 1 h, 3 h, 6 h) and reads completeness through the processor's query API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.cli import cli
from streamer.models import SyncState
from streamer.producer.context import ProducerContext
from streamer.producer.repair import repair_loop
from streamer.producer.runner import open_producer, run_owned_cycle
from streamer.settings import Settings
from streamer.sim.catalog import catalog_of
from streamer.sim.config import FaultConfig, Gap, Late, SimConfig
from streamer.sim.model import expected
from streamer.sim.pages import Cursor, plan_page
from streamer.sim.server import SimServer
from tests.integration.processor.helpers import (
    START_MS,
    clickhouse,
    prepare,
    processor_settings,
    start_processor,
    stop,
    streamer,
    wait_consumed,
)
from tests.integration.producer.helpers import read_topic

pytestmark = pytest.mark.kafka

T0 = START_MS  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
STEP = 20 * 60_000
PAGE = 1_000
SITE_SQL = """
SELECT count(), uniqExact(point, ts), sum(toInt64(round(value * 1000))),
       sum(crc32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts)))))
FROM {db}.timeseries_raw FINAL WHERE site = '{site}'
"""


def _settings(kafka_settings: Settings, **overrides: Any) -> Settings:
    """A test processor's settings, shared by the in-process producer (which reads its query API)."""
    settings = processor_settings(kafka_settings)
    update = {
        "api_url": f"http://127.0.0.1:{settings.processor_web_port}",
        "ace_token": SecretStr("dev-token"),
        "ace_page_size": PAGE,
        "weather_enabled": False,
        "ace_backoff_base_s": 0.01,
        **overrides,
    }
    return settings.model_copy(update=update)


def _config() -> tuple[SimConfig, Late, str]:
    base = SimConfig(sites=("a", "b"), points=40, invalid_share=0.0, seed=21)
    gap_point = catalog_of(base, "b").configured_names()[5]
    late = Late("a", None, T0 + HOUR, T0 + 3 * HOUR, 3 * 3600)  # the outage; arrives at T0 + 6 h
    gap = Gap("b", gap_point, T0 + HOUR, T0 + 2 * HOUR)
    config = SimConfig(
        sites=("a", "b"), points=40, invalid_share=0.0, seed=21, gaps=(gap,), faults=FaultConfig(late=(late,))
    )
    return config, late, gap_point


def _pages(config: SimConfig, site: str, start: int, end: int) -> int:
    """The timeseries requests a fault-free walk of the window takes (the simulator's own page plan)."""
    cursor: Cursor | None = Cursor(site, start, end, config.order)
    pages = 0
    while cursor is not None:
        pages += 1
        cursor = plan_page(config, cursor, PAGE, config.repeat, config.empty_every).next_cursor
    return pages


def _sim_cli(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)


async def _sql(settings: Settings, text: str) -> list[list[Any]]:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{settings.api_url}/api/v1/sql", json={"sql": text})
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def _totals(row: list[Any]) -> tuple[int, int, int, int]:
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _want(answer: dict[str, Any]) -> tuple[int, int, int, int]:
    valid = answer["valid"]
    return valid["count"], valid["count"], valid["value_milli_sum"], valid["key_checksum"]


async def _run(
    settings: Settings,
    server: SimServer,
    steps: int,
    on_step: Callable[[int, ProducerContext], Any] | None = None,
    step: int = STEP,
) -> int:
    """Producer cycles every ``step`` of simulated time from T0; each waits until the processor stored it."""
    now = [T0]
    async with (
        AceClient(settings) as client,
        open_producer(settings, client, clock=lambda: now[0]) as ctx,
        repair_loop(ctx),
    ):
        for i in range(steps + 1):
            now[0] = server.state.fixed_now_ms = T0 + i * step
            if on_step is not None:
                await on_step(now[0], ctx)
            outcomes = await run_owned_cycle(ctx)
            assert all(o.ok for o in outcomes), outcomes
            await wait_consumed(settings, [], timeout=120)
    return now[0]


async def test_late_outage_is_repaired_and_a_permanent_gap_costs_one_fetch_per_age(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """(1) After the first revisit past the late arrival, site a equals `sim expected` exactly;
    (2) the gap hour of site b is fetched again exactly once per age, costs what its pages cost, and
    `streamer gaps` reports it; (3) nothing is duplicated and the watermark never goes back."""
    config, _, gap_point = _config()
    log = tmp_path / "processor.log"
    settings = _settings(
        kafka_settings,
        sites=["a", "b"],
        repair_revisit_s=[3600, 3 * 3600, 6 * 3600],
        repair_budget_per_hour=1000,
    )
    db = settings.clickhouse_database
    await prepare(settings)
    proc = start_processor(settings, log)
    mid: dict[str, tuple[int, int, int, int]] = {}
    try:
        async with SimServer(config) as server:
            settings = settings.model_copy(update={"ace_base_url": server.url})
            root = server.url.removesuffix("/api")

            async def checkpoint(now: int, _: ProducerContext) -> None:
                if now == T0 + 7 * HOUR:  # hour [2, 3) repaired at 6 h, hour [1, 2) not yet
                    mid["a"] = _totals((await _sql(settings, SITE_SQL.format(db=db, site="a")))[0])

            end = await _run(settings, server, 27, checkpoint)
            window = ("--site", "a", "--start", str(T0 - HOUR), "--end", str(end))
            final_a = await asyncio.to_thread(_sim_cli, "expected", "--url", root, *window)
            got_a = _totals((await _sql(settings, SITE_SQL.format(db=db, site="a")))[0])
            final_b = expected(config, "b", T0 - HOUR, end)
            got_b = _totals((await _sql(settings, SITE_SQL.format(db=db, site="b")))[0])
            gaps = await asyncio.to_thread(
                streamer, settings, "gaps", "--site", "b", "--start", str(T0), "--end", str(end),
                "--format", "json",
            )  # fmt: skip
        rollups = await _sql(
            settings, f"SELECT site, sum(count) FROM {db}.rollup_1h_v WHERE site IN ('a', 'b') GROUP BY site"
        )
        raw = await _sql(settings, f"SELECT count() FROM {db}.timeseries_raw")
        await wait_consumed(settings, [proc], topic=settings.topic_sync_runs)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    # (1) exact once the first revisit past the arrival (hour [1, 2) at 6 h of age, T0 + 8 h) ran
    assert got_a == _want(final_a)
    one_hour = expected(config, "a", T0 + HOUR, T0 + 2 * HOUR)["valid"]
    by_mid = expected(config, "a", T0 - HOUR, T0 + 7 * HOUR - STEP)["valid"]  # read by then
    assert mid["a"][0] == by_mid["count"] - one_hour["count"]  # all but the hour not revisited yet
    runs = [
        r
        for r in clickhouse(
            settings,
            f"SELECT site, window_start_ms, api_calls, samples_recovered, status FROM {db}.sync_runs FINAL "
            "WHERE kind = 'repair' ORDER BY site, window_start_ms, started_at_ms",
        )
    ]
    a_runs = [(r[1], r[3]) for r in runs if r[0] == "a"]
    # [1, 2): at 1 h and 3 h still hidden, at 6 h back; [2, 3): at 1 h hidden, at 3 h (T0 + 6 h) back
    h1, h2 = T0 + HOUR, T0 + 2 * HOUR
    two_hour = expected(config, "a", h2, h2 + HOUR)["valid"]["count"]
    assert a_runs == [(h1, 0), (h1, 0), (h1, one_hour["count"]), (h2, 0), (h2, two_hour)]

    # (2) the permanent gap: once per age, never more; its cost is exactly its pages
    b_runs = [(r[1], int(r[2])) for r in runs if r[0] == "b"]
    cost = _pages(config, "b", h1, h1 + HOUR)
    print(f"permanent gap: {len(b_runs)} re-fetches, {sum(c for _, c in b_runs)} repair API requests")
    assert b_runs == [(h1, cost)] * 3
    assert all(r[4] == "ok" for r in runs)
    assert got_b == _want(final_b)
    assert gaps.returncode == 0, gaps.stderr
    reported = {p["point_name"]: p["gaps"] for p in json.loads(gaps.stdout)["points"]}
    assert list(reported) == [gap_point]
    assert [g["missing"] for g in reported[gap_point]] == [60]

    # (3) fetched again, yet every count exact: FINAL, the rollups, and the watermark only forward
    assert dict((s, int(n)) for s, n in rollups) == {"a": got_a[0], "b": got_b[0]}
    assert int(raw[0][0]) > got_a[0] + got_b[0]  # the re-fetches did insert rows again
    states = [
        SyncState.model_validate_json(v or b"")
        for k, v, _ in await read_topic(settings, settings.topic_sync)
        if k == b"a"
    ]
    marks = [s.watermark_ms for s in states]
    assert marks == sorted(marks) and marks[-1] == end


async def test_a_point_enabled_between_refreshes_loses_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """A point enabled in the simulator mid-run (`sim points --enable`) has every sample from that
    moment in ClickHouse, exactly, although the next points refresh came an hour later; disabled
    again, it stops at the window before the refresh that saw the change. The repair loop is off:
    this is the refresh's own catch-up."""
    config = SimConfig(sites=("c",), points=40, invalid_share=0.0, seed=4)
    cat = catalog_of(config, "c")
    j = next(j for j in range(cat.size) if cat.configured[j] and not cat.default_enabled[j])
    point = cat.names[j]
    enabled_at, disabled_at = T0 + 30 * 60_000, T0 + 140 * 60_000
    seen_disabled = T0 + 160 * 60_000  # the refresh after disabling; its window starts at 150 min
    settings = _settings(kafka_settings, sites=["c"], repair_revisit_s=[])
    log = tmp_path / "processor.log"
    db = settings.clickhouse_database
    await prepare(settings)
    proc = start_processor(settings, log)
    try:
        async with SimServer(config) as server:
            settings = settings.model_copy(update={"ace_base_url": server.url})
            root = server.url.removesuffix("/api")

            async def switch(now: int, ctx: ProducerContext) -> None:
                if now in (enabled_at, disabled_at):
                    flag = "--enable" if now == enabled_at else "--disable"
                    await asyncio.to_thread(_sim_cli, "points", "--url", root, "--site", "c", flag, point)
                if now in (T0 + 90 * 60_000, seen_disabled):
                    ctx.book.expire_points("c")  # the refresh period has passed

            end = await _run(settings, server, 18, switch, step=10 * 60_000)
        rows = await _sql(
            settings,
            f"SELECT toUnixTimestamp64Milli(ts) FROM {db}.timeseries_raw FINAL "
            f"WHERE point = '{point}' ORDER BY ts",
        )
        others = await _sql(settings, SITE_SQL.format(db=db, site="c") + f" AND point != '{point}'")
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    stored = [int(r[0]) for r in rows]
    phase = int(cat.phase_ms[j])
    promised = [
        t for t in range(T0 - HOUR + phase, end, 60_000) if enabled_at <= t < seen_disabled - 10 * 60_000
    ]
    assert [t for t in stored if t >= enabled_at] == promised
    assert _totals(others[0]) == _want(expected(config, "c", T0 - HOUR, end, {point: False}))
