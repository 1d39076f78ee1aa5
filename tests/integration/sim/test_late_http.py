"""Late arrival over real HTTP: `sim serve --late`, `sim faults --late` on a running simulator, its
clock (`sim clock`), and `sim expected` final versus `--url --visible` now."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from click.testing import CliRunner

from streamer.cli import cli
from streamer.sim import SimConfig, SimServer, expected, run_simulator_process
from streamer.sim.config import FaultConfig, Late
from tests.integration.sim.helpers import AUTH, HOUR, T0, walk_window

MIN = 60_000


def _cli(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = orjson.loads(result.output)
    return parsed


async def test_late_span_arrives_when_the_simulator_clock_passes_it() -> None:
    """A late span set at start and one switched on at runtime are absent until END+DELAY, then served."""
    first = Late("alpha", None, T0, T0 + 10 * MIN, 600)
    config = SimConfig(sites=("alpha",), points=60, seed=3, faults=FaultConfig(late=(first,)))
    second = f"alpha/*@{T0 + 30 * MIN}..{T0 + 40 * MIN}+1200"
    window = ("--site", "alpha", "--start", str(T0), "--end", str(T0 + HOUR))
    final = expected(config, "alpha", T0, T0 + HOUR)
    async with run_simulator_process(config) as url:
        root = url.removesuffix("/api")
        faults = await asyncio.to_thread(
            _cli, "faults", "--url", root, "--late", first.spec(), "--late", second
        )
        counts = []
        for now in (T0 + 15 * MIN, first.arrives_ms, T0 + 40 * MIN + 1_200_000):
            clock = await asyncio.to_thread(_cli, "clock", "--url", root, "--set", str(now))
            assert clock == {"now": now, "fixed": True}
            visible = await asyncio.to_thread(_cli, "expected", "--url", root, "--visible", *window)
            assert await asyncio.to_thread(_cli, "expected", "--url", root, *window) == final
            async with httpx.AsyncClient(headers=AUTH) as client:
                walk = await walk_window(client, url, "alpha", T0, T0 + HOUR, page_size=900)
            assert len(walk.samples) == visible["all"]["count"]  # type: ignore[index]
            counts.append(len(walk.samples))
        freed = await asyncio.to_thread(_cli, "clock", "--url", root, "--free")
    assert faults["late"] == [first.spec(), second]
    size = final["all"]["count"] // 60  # points with samples: one a minute each
    assert counts == [
        final["all"]["count"] - 20 * size,
        final["all"]["count"] - 10 * size,
        final["all"]["count"],
    ]
    assert freed["fixed"] is False


async def test_late_refusals() -> None:
    """A late span of an unknown site or a bad spec is a 400 and changes nothing; --visible needs --url."""
    async with SimServer(SimConfig(sites=("alpha",), points=10)) as server, httpx.AsyncClient() as client:
        unknown = await client.post(f"{server.url}/_sim/faults", json={"late": [f"zz@{T0}..{T0 + 1}+1"]})
        bad = await client.post(f"{server.url}/_sim/faults", json={"late": ["alpha@x..y+1"]})
        clock = await client.post(f"{server.url}/_sim/clock", json={"now": "yesterday"})
        faults = (await client.get(f"{server.url}/_sim/faults")).json()
    assert (unknown.status_code, bad.status_code, clock.status_code) == (400, 400, 400)
    assert "zz" in unknown.json()["detail"] and faults["late"] == []
    result = CliRunner().invoke(
        cli, ["sim", "expected", "--site", "alpha", "--start", "0", "--end", "1", "--visible"]
    )
    assert result.exit_code == 2 and "--visible needs --url" in result.output
