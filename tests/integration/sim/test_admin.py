"""Over real HTTP: points switched at runtime, mode switches, counters, and the simulator in a child
process driven by the ``streamer sim`` commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from click.testing import CliRunner

from streamer.cli import cli
from streamer.sim import SimConfig, SimServer, expected, run_simulator, run_simulator_process
from streamer.sim.catalog import catalog_of
from tests.integration.sim.helpers import AUTH, HOUR, T0, configured_points, summarise, walk_window

CONFIG = SimConfig(sites=("alpha", "beta"), points=150)


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(CONFIG) as srv:
        yield srv


def _enabled_point(site: str) -> str:
    cat = catalog_of(CONFIG, site)
    return next(n for j, n in enumerate(cat.names) if cat.default_enabled[j] and cat.ptype[j] == 0)


async def test_disabling_a_point_changes_points_and_expected(server: SimServer) -> None:
    """A point disabled at runtime shows collect_enabled false and leaves "valid"; enabling restores it."""
    point = _enabled_point("alpha")
    async with httpx.AsyncClient(headers=AUTH) as client:
        before = (
            await client.get(
                f"{server.url}/_sim/expected", params={"site": "alpha", "start": T0, "end": T0 + HOUR}
            )
        ).json()
        switched = await client.post(
            f"{server.url}/_sim/points", json={"site": "alpha", "disable": [point.split("/", 1)[1]]}
        )
        assert point in switched.json()["disabled"]
        points = await configured_points(client, server.url, "alpha")
        assert points[point] is False
        after = (
            await client.get(
                f"{server.url}/_sim/expected", params={"site": "alpha", "start": T0, "end": T0 + HOUR}
            )
        ).json()
        walk = await walk_window(client, server.url, "alpha", T0, T0 + HOUR, page_size=5000)
        restored = await client.post(f"{server.url}/_sim/points", json={"site": "alpha", "enable": [point]})
        assert point not in restored.json()["disabled"]
        assert (await configured_points(client, server.url, "alpha"))[point] is True
        unknown = await client.post(
            f"{server.url}/_sim/points", json={"site": "alpha", "disable": ["no/such"]}
        )
    assert after == expected(CONFIG, "alpha", T0, T0 + HOUR, {point: False})
    assert after["all"] == before["all"]
    assert 50 <= before["valid"]["count"] - after["valid"]["count"] <= 60
    assert summarise("alpha", T0, T0 + HOUR, walk.samples, points) == after
    assert unknown.status_code == 404


async def test_mode_and_stats_admin(server: SimServer) -> None:
    """Mode switches order and repeats at runtime; stats count pages and samples and can be reset."""
    async with httpx.AsyncClient(headers=AUTH) as client:
        mode = await client.post(f"{server.url}/_sim/mode", json={"order": "grouped", "repeat": 0})
        assert mode.json() == {"order": "grouped", "repeat": 0, "empty_every": 0}
        assert (await client.post(f"{server.url}/_sim/mode", json={"order": "random"})).status_code == 400
        assert (await client.post(f"{server.url}/_sim/mode", json={"speed": 1})).status_code == 400
        walk = await walk_window(client, server.url, "beta", T0, T0 + HOUR, page_size=4000)
        stats = (await client.get(f"{server.url}/_sim/stats")).json()
        assert walk.repeats == 0
        assert (stats["pages"], stats["samples"]) == (walk.pages, len(walk.samples))
        await client.delete(f"{server.url}/_sim/stats")
        assert (await client.get(f"{server.url}/_sim/stats")).json() == {"faults": {}}
        health = (await client.get(f"{server.root_url}/_sim/health")).json()
        assert health["status"] == "ok" and health["sites"] == ["alpha", "beta"]


async def test_stats_count_api_requests_per_endpoint(server: SimServer) -> None:
    """Every API request is counted under its endpoint (either prefix, any site, refused too); admin
    calls are not."""
    async with httpx.AsyncClient(headers=AUTH) as client:
        await client.get(f"{server.url}/sites/")
        await client.get(f"{server.root_url}/sites/alpha/configured_points")
        await client.get(f"{server.url}/sites/beta/configured_points")
        await client.get(f"{server.url}/sites/alpha/weather", headers={"Authorization": "Bearer wrong"})
        await walk_window(client, server.url, "alpha", T0, T0 + HOUR, page_size=4000)
        walk = await walk_window(client, server.url, "beta", T0, T0 + HOUR, page_size=4000)
        stats = (await client.get(f"{server.url}/_sim/stats")).json()
    requests = {k: v for k, v in stats.items() if k.startswith("requests ")}
    assert requests == {
        "requests /sites/": 1,
        "requests /sites/{site}/configured_points": 2,
        "requests /sites/{site}/weather": 1,
        "requests /sites/{site}/timeseries/paginated": 2 * walk.pages,
    }


async def test_run_simulator_yields_the_api_base_url() -> None:
    """run_simulator serves for the block's duration under an /api base URL, then stops."""
    async with run_simulator(SimConfig(sites=("x",), points=10)) as url:
        assert url.endswith("/api")
        async with httpx.AsyncClient(headers=AUTH) as client:
            assert (await client.get(f"{url}/sites/")).json()["items"][0]["name"] == "x"
    with pytest.raises(httpx.ConnectError):
        await httpx.AsyncClient().get(f"{url}/sites/")


def _cli(*args: str) -> dict[str, object]:
    """Run a `streamer sim` command in this process (the server it talks to is a child process)."""
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = orjson.loads(result.output)
    return parsed


async def test_child_process_driven_by_the_cli() -> None:
    """`streamer sim serve` in a child process; `points`, `faults` and `expected --url` talk to it."""
    config = SimConfig(sites=("alpha", "beta"), points=150, seed=5)
    point = catalog_of(config, "beta").configured_names()[3]
    async with run_simulator_process(config) as url:
        disabled = await asyncio.to_thread(_cli, "points", "--url", url, "--site", "beta", "--disable", point)
        faults = await asyncio.to_thread(
            _cli, "faults", "--url", url, "--fault-5xx", "0.25", "--unauthorized", "alpha"
        )
        window = ("--site", "beta", "--start", str(T0), "--end", str(T0 + HOUR))
        served = await asyncio.to_thread(_cli, "expected", "--url", url, *window)
        async with httpx.AsyncClient(headers=AUTH) as client:
            assert (await client.get(f"{url}/sites/alpha/weather")).status_code == 401
            walk = await walk_window(client, url, "beta", T0, T0 + HOUR, page_size=5000, attempts=3)
    assert point in disabled["disabled"]  # type: ignore[operator]
    assert faults["rate_5xx"] == 0.25 and faults["unauthorized_sites"] == ["alpha"]
    assert served == expected(config, "beta", T0, T0 + HOUR, {point: False})
    assert len(walk.samples) == served["all"]["count"]  # type: ignore[index]
