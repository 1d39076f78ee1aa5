"""Every answer of a running simulator is the vendor's model (``aceiot-models``): points pages, sites,
timeseries pages, weather; and the client reads its nulls as ``expected()`` counts them.

The vendor's models ignore unknown keys, so each answer is also held to the model's field names: the
simulator sends nothing the vendor does not define. Where ace-api.md documents another deployment's
deviation (``total_items`` for ``total``, flat weather numbers), the simulator serves it on some sites
on purpose; those answers are checked to be the vendor's model with exactly that deviation undone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aceiot_models import BACnetData, PaginatedResponse, PointResponse, PointSample, Site
from aceiot_models.timeseries import WeatherData, WeatherPointSample
from pydantic import BaseModel, SecretStr, TypeAdapter

from streamer.ace.client import AceClient
from streamer.producer.points import diff_points, point_record
from streamer.settings import Settings
from streamer.sim import SimConfig, SimServer, expected
from streamer.sim.catalog import catalog_of
from streamer.sim.model import enabled_mask
from streamer.sim.vendor import NULLABLE

AUTH = {"authorization": "Bearer dev-token"}
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SITES = ("alpha", "beta", "gamma")
CONFIG = SimConfig(sites=SITES, points=300, null_share=0.1, invalid_share=0.3, repeat=2, empty_every=3)
ENVELOPE = {"page", "pages", "per_page", "total", "items"}
SAMPLES = TypeAdapter(list[PointSample])


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(CONFIG) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as client:
        yield client


def _only_vendor_fields(model: type[BaseModel], data: dict[str, Any]) -> None:
    assert set(data) <= set(model.model_fields), sorted(set(data) - set(model.model_fields))


def _as_vendor_envelope(body: dict[str, Any]) -> dict[str, Any]:
    """The envelope with the documented ``total_items`` deviation undone (and only that one)."""
    if "total_items" in body:
        assert "total" not in body
        body = {**body, "total": body["total_items"]}
        del body["total_items"]
    assert set(body) == ENVELOPE
    return body


async def _pages(http: httpx.AsyncClient, url: str, per_page: int) -> list[dict[str, Any]]:
    pages, number = [], 1
    while True:
        body = (await http.get(url, params={"page": number, "per_page": per_page})).raise_for_status().json()
        pages.append(body)
        if number >= body["pages"]:
            return pages
        number += 1


async def test_points_pages_are_vendor_point_responses(server: SimServer, http: httpx.AsyncClient) -> None:
    """Every configured_points page is a PaginatedResponse[PointResponse] of vendor fields only, with
    round(M * null_share) nulls in each nullable field."""
    for position, site in enumerate(SITES):
        pages = await _pages(http, f"{server.url}/sites/{site}/configured_points", per_page=70)
        assert ("total_items" in pages[0]) is (position % 2 == 1)
        items = []
        for body in pages:
            PaginatedResponse[PointResponse].model_validate(_as_vendor_envelope(body))
            items += body["items"]
        for item in items:
            _only_vendor_fields(PointResponse, item)
            if item["bacnet_data"] is not None:
                _only_vendor_fields(BACnetData, item["bacnet_data"])
        assert len({item["id"] for item in items}) == len(items) == CONFIG.points
        nulls = {f: sum(item[f] is None for item in items) for f in (*NULLABLE, "collect_enabled")}
        assert nulls == dict.fromkeys(nulls, 30)


async def test_sites_are_vendor_sites(server: SimServer, http: httpx.AsyncClient) -> None:
    """GET /sites/ pages are PaginatedResponse[Site]; each site's id is its points' site_id."""
    pages = await _pages(http, f"{server.url}/sites/", per_page=2)
    sites = []
    for body in pages:
        PaginatedResponse[Site].model_validate(_as_vendor_envelope(body))
        sites += body["items"]
    assert [s["name"] for s in sites] == list(SITES)
    for site in sites:
        _only_vendor_fields(Site, site)
        point = server.state.point_items(site["name"])[0]
        assert (point["site_id"], point["client_id"]) == (site["id"], site["client_id"])
    assert [s["archived"] for s in sites] == [False, None, False]


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
async def test_timeseries_pages_hold_vendor_point_samples(
    server: SimServer, http: httpx.AsyncClient, order: str
) -> None:
    """Every timeseries page, empty ones included, holds PointSamples of exactly name, time and value."""
    await http.post(f"{server.url}/_sim/mode", json={"order": order})
    for site in SITES:
        url = f"{server.url}/sites/{site}/timeseries/paginated"
        params: dict[str, Any] = {"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T00:20:00Z"}
        pages = samples = 0
        while True:
            body = (await http.get(url, params={**params, "page_size": 1000})).raise_for_status().json()
            assert set(body) <= {"point_samples", "next_cursor", "has_more"}
            assert all(set(s) == {"name", "time", "value"} for s in body["point_samples"])
            samples += len(SAMPLES.validate_python(body["point_samples"]))
            pages += 1
            if not body["has_more"] or not body.get("next_cursor"):
                break
            params = {"cursor": body["next_cursor"]}
        assert pages > 3 and samples >= expected(CONFIG, site, T0, T0 + 1_200_000)["all"]["count"]


def _as_vendor_weather(body: dict[str, Any]) -> dict[str, Any]:
    """Flat weather (numbers and one shared ``time`` or ``dt``) as the vendor's per-field objects."""
    if "time" not in body and "dt" not in body:
        return body
    shared = body["time"] if "time" in body else datetime.fromtimestamp(body["dt"], UTC).isoformat()
    fields = {k: v for k, v in body.items() if k not in ("time", "dt")}
    assert all(isinstance(v, float) for v in fields.values())
    return {k: {"name": k, "value": v, "time": shared} for k, v in fields.items()}


async def test_weather_is_vendor_weather_data(server: SimServer, http: httpx.AsyncClient) -> None:
    """Object-shaped weather is WeatherData of named WeatherPointSamples; the flat shapes are the same
    data without the objects. Every field the vendor names is there."""
    shapes = []
    for site in SITES:
        body = (await http.get(f"{server.url}/sites/{site}/weather")).raise_for_status().json()
        shapes.append("object" if isinstance(body["temp"], dict) else "flat")
        vendor = _as_vendor_weather(body)
        _only_vendor_fields(WeatherData, vendor)
        assert set(vendor) == set(WeatherData.model_fields)
        parsed = WeatherData.model_validate(vendor)
        for field in WeatherData.model_fields:
            _only_vendor_fields(WeatherPointSample, vendor[field])
            assert getattr(parsed, field).name
        if shapes[-1] == "object":
            assert {v["name"] for v in body.values()} == {
                f"{site}/weather/{f}" for f in WeatherData.model_fields
            }
    assert shapes == ["object", "flat", "flat"]


async def test_client_reads_nulls_as_expected_counts_them(server: SimServer, base_settings: Settings) -> None:
    """The points the client and the producer take as collected are exactly expected()'s enabled ones,
    null collect_enabled included, also after such a point is switched off and on at runtime."""
    ace = base_settings.model_copy(update={"ace_base_url": server.url, "ace_token": SecretStr("dev-token")})
    site = "beta"
    cat = catalog_of(CONFIG, site)
    null_point = next(n for j, n in enumerate(cat.names) if cat.null_enabled[j])
    async with AceClient(ace) as client:
        for switch in ({}, {null_point: False}, {null_point: True}):
            for name, on in switch.items():
                server.state.set_enabled(site, [name], on)
            points = await client.list_points(site)
            overrides = server.state.overrides[site]
            enabled = enabled_mask(cat, overrides)
            want = {n for j, n in enumerate(cat.names) if enabled[j]}
            assert {p.name for p in points if p.collect_enabled} == want
            _, published = diff_points(site, {}, [point_record(site, p, 1) for p in points])
            assert set(published) == want
            served = {p["name"]: p["collect_enabled"] for p in server.state.point_items(site)}
            assert served[null_point] is (None if overrides.get(null_point, True) else False)
    assert int(cat.null_enabled.sum()) == 30 and not (cat.null_enabled & ~cat.default_enabled).any()


async def test_client_discovers_every_site(server: SimServer, base_settings: Settings) -> None:
    """Through the client, every simulated site is collected and not archived (null archived included)."""
    ace = base_settings.model_copy(update={"ace_base_url": server.url, "ace_token": SecretStr("dev-token")})
    async with AceClient(ace) as client:
        sites = await client.list_sites()
    assert [(s.name, s.collect_enabled, s.archived) for s in sites] == [(s, True, False) for s in SITES]
