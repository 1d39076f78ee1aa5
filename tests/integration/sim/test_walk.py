"""Over real HTTP: pagination walks, listings and request validation of a running simulator."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from streamer.sim import SimConfig, SimServer, expected
from tests.integration.sim.helpers import AUTH, HOUR, T0, configured_points, summarise, walk_window

SITES = ("alpha", "beta")


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(sites=SITES, points=250, repeat=4, empty_every=3)) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        yield http


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
async def test_walk_collects_exactly_expected(
    server: SimServer, client: httpx.AsyncClient, order: str
) -> None:
    """Walking every page yields expected()'s distinct samples, with repeats and empty pages on the way."""
    await client.post(f"{server.url}/_sim/mode", json={"order": order})
    start, end = T0 + 1_500, T0 + 2 * HOUR + 250
    for site, base in (("alpha", server.url), ("beta", server.root_url)):
        walk = await walk_window(client, base, site, start, end, page_size=3000)
        points = await configured_points(client, base, site)
        assert summarise(site, start, end, walk.samples, points) == expected(
            server.state.config, site, start, end
        )
        assert walk.repeats == 4 * (walk.pages - walk.empty_pages - 1)
        assert walk.empty_pages == (walk.pages - walk.empty_pages) // 3
        assert walk.empty_pages > 0
        times = [t for _, t in walk.order]
        names = [n for n, _ in walk.order]
        if order == "interleaved":
            assert times == sorted(times)
        else:
            runs = sum(1 for a, b in itertools.pairwise(names) if a != b) + 1
            assert runs == len(set(names))  # each point's samples in one run


async def test_window_edges_are_exact(server: SimServer, client: httpx.AsyncClient) -> None:
    """Start is inclusive and end exclusive to the millisecond, over HTTP as in expected()."""
    walk = await walk_window(client, server.url, "alpha", T0, T0 + 60_000, page_size=50_000)
    times = sorted({t for _, t in walk.samples})
    first_ms = next(t for t in times if t % 1000)  # a point on a millisecond phase
    inside = await walk_window(client, server.url, "alpha", first_ms, first_ms + 1, page_size=100)
    before = await walk_window(client, server.url, "alpha", first_ms - 1, first_ms, page_size=100)
    assert {t for _, t in inside.samples} == {first_ms}
    assert first_ms not in {t for _, t in before.samples}


async def test_configured_points_envelopes(server: SimServer, client: httpx.AsyncClient) -> None:
    """configured_points lists M points with 5 % disabled; sites alternate total and total_items."""
    points = await configured_points(client, server.url, "alpha", per_page=70)
    assert len(points) == 250
    assert sum(not enabled for enabled in points.values()) == 12  # round(250 * 0.05)
    first = (await client.get(f"{server.url}/sites/alpha/configured_points", params={"per_page": 70})).json()
    second = (await client.get(f"{server.url}/sites/beta/configured_points", params={"per_page": 70})).json()
    assert (first["total"], first["pages"], "total_items" in first) == (250, 4, False)
    assert (second["total_items"], "total" in second) == (250, False)
    item = first["items"][0]
    assert {"site", "marker_tags", "kv_tags", "point_type", "bacnet_data", "collect_interval"} <= set(item)


async def test_sites_listing(server: SimServer, client: httpx.AsyncClient) -> None:
    """GET /sites/ lists the configured sites in a paged envelope."""
    body = (await client.get(f"{server.url}/sites/", params={"per_page": 1, "page": 2})).json()
    assert [(s["name"], s["archived"]) for s in body["items"]] == [("beta", None)]  # odd positions: null
    assert (body["pages"], body["total"]) == (2, 2)


async def test_bad_requests(server: SimServer, client: httpx.AsyncClient) -> None:
    """Bad token 401 (not echoed, before validation), unknown site 404, malformed queries 400."""
    url = f"{server.url}/sites/alpha/timeseries/paginated"
    window = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T01:00:00Z"}
    async with httpx.AsyncClient(headers={"authorization": "Bearer wrong-token"}) as stranger:
        denied = await stranger.get(url, params=window)
        unchecked = await stranger.get(url)  # the token is checked before the parameters
    async with httpx.AsyncClient(headers={"authorization": "bearer dev-token"}) as lowercase:
        assert (await lowercase.get(url, params=window)).status_code == 200
    assert denied.status_code == 401 and "wrong-token" not in denied.text
    assert unchecked.status_code == 401
    assert (await httpx.AsyncClient().get(url, params=window)).status_code == 401
    assert (await client.get(f"{server.url}/sites/nowhere/weather")).status_code == 404
    assert (await client.get(url, params={**window, "raw_data": "false"})).status_code == 400
    assert (await client.get(url, params={"start_time": "2024-01-01T00:00:00Z"})).status_code == 400
    assert (await client.get(url, params={"cursor": "garbage"})).status_code == 400
    assert (await client.get(url, params={**window, "page_size": "0"})).status_code == 400
    first = (await client.get(url, params={**window, "page_size": 10})).json()
    foreign = await client.get(
        f"{server.url}/sites/beta/timeseries/paginated", params={"cursor": first["next_cursor"]}
    )
    assert foreign.status_code == 400 and "another site" in foreign.text


async def test_weather_over_http(server: SimServer, client: httpx.AsyncClient) -> None:
    """Weather comes per field as objects for the first site, as flat numbers for the second."""
    alpha = (await client.get(f"{server.url}/sites/alpha/weather")).json()
    beta = (await client.get(f"{server.url}/sites/beta/weather")).json()
    assert set(alpha["temp"]) == {"name", "value", "time", "units", "source"}
    assert isinstance(beta["temp"], float) and "time" in beta
