"""Payloads generated from the vendor's models (``aceiot-models``) go through the ACE client (httpx
MockTransport) without error and with the meaning README's notes on the API give each field."""

from __future__ import annotations

import asyncio
import itertools
import math
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aceiot_models import PaginatedResponse, PointResponse, PointSample, Site
from aceiot_models.timeseries import WeatherData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.ace.weather import WEATHER_POINTS, WeatherSample
from streamer.models import AcePoint
from streamer.producer.points import diff_points, point_record
from tests.contract.strategies import payloads
from tests.isolation import isolated_settings
from tests.unit.ace.helpers import said

T = TypeVar("T")
BOUNDED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SETTINGS = isolated_settings(
    "contract",
    Path(tempfile.gettempdir()) / "streamer-contract",
    ace_token=SecretStr("contract-token"),
    ace_base_url="https://ace.test/api",
    ace_requests_per_s=1_000_000.0,
    ace_max_attempts=1,
)
POINTS = st.lists(payloads(PointResponse), max_size=12, unique_by=lambda item: item["name"])
SITES = st.lists(payloads(Site), min_size=1, max_size=6, unique_by=lambda item: item["name"])


def _run(handler: Callable[[httpx.Request], httpx.Response], call: Callable[[AceClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AceClient(SETTINGS, transport=httpx.MockTransport(handler)) as client:
            return await call(client)

    return asyncio.run(main())


def _envelopes(items: list[dict[str, Any]], per_page: int, model: type[Any]) -> list[dict[str, Any]]:
    """The listing as the vendor's PaginatedResponse pages (each checked against the vendor's model)."""
    pages = max(1, math.ceil(len(items) / per_page))
    out = []
    for page in range(1, pages + 1):
        chunk = items[(page - 1) * per_page : page * per_page]
        body = {"page": page, "pages": pages, "per_page": per_page, "total": len(items), "items": chunk}
        PaginatedResponse[model].model_validate(body)  # type: ignore[valid-type]
        out.append(body)
    return out


def _lists(envelopes: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelopes[int(request.url.params["page"]) - 1])

    return handler


def _meaning_of(item: dict[str, Any], point: AcePoint) -> None:
    """The documented reading of one listed point: null or absent tags are empty, a null or absent
    collect_enabled is collected, a null collect_interval is undeclared, the rest is kept as sent."""
    assert point.marker_tags == (item.get("marker_tags") or [])
    assert point.kv_tags == (item.get("kv_tags") or {})
    assert point.collect_enabled is (item.get("collect_enabled") is not False)
    assert point.collect_interval == item.get("collect_interval")
    for field in ("site", "client", "point_type", "bacnet_data"):
        assert getattr(point, field) == item.get(field), field
    own = set(AcePoint.model_fields)
    assert point.model_extra == {k: v for k, v in item.items() if k not in own}


@BOUNDED
@given(items=POINTS, per_page=st.integers(1, 5))
def test_vendor_points_listing_reads_as_documented(items: list[dict[str, Any]], per_page: int) -> None:
    """Every PointResponse of a PaginatedResponse walk comes back once, each field with its meaning."""
    envelopes = _envelopes(items, per_page, PointResponse)
    points = _run(_lists(envelopes), lambda client: client.list_points("s"))
    assert [p.name for p in points] == [item["name"] for item in items]
    for item, point in zip(items, points, strict=True):
        _meaning_of(item, point)


@BOUNDED
@given(items=POINTS)
def test_vendor_points_become_point_records(items: list[dict[str, Any]]) -> None:
    """ace.points gets exactly the collected points (null collect_enabled included), vendor fields in
    metadata, the unit from kv_tags."""
    points = _run(_lists(_envelopes(items, 100, PointResponse)), lambda client: client.list_points("s"))
    records = [point_record("s", p, 1) for p in points]
    changes, published = diff_points("s", {}, records)
    collected = {item["name"] for item in items if item.get("collect_enabled") is not False}
    assert set(published) == collected == {c.point for c in changes}
    for item, record in zip(items, records, strict=True):
        assert record.unit == (item.get("kv_tags") or {}).get("unit")
        for field in ("id", "site_id", "client_id", "created", "updated", "collect_config", "device_id"):
            if field in item:
                assert record.metadata[field] == item[field], field


@BOUNDED
@given(items=SITES, per_page=st.integers(1, 4))
def test_vendor_sites_listing_reads_as_documented(items: list[dict[str, Any]], per_page: int) -> None:
    """Every vendor Site comes back; null or absent archived is not archived; all are collected."""
    sites = _run(_lists(_envelopes(items, per_page, Site)), lambda client: client.list_sites())
    assert [s.name for s in sites] == [item["name"] for item in items]
    for item, site in zip(items, sites, strict=True):
        assert site.archived is (item.get("archived") is True)
        assert site.collect_enabled is True  # the vendor's Site has no such field


def _documented_value(value: Any) -> float | None:
    """A weather value: a number or a numeric string, finite; anything else is skipped."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@BOUNDED
@given(body=payloads(WeatherData))
def test_vendor_weather_reads_as_documented(body: dict[str, Any]) -> None:
    """Each WeatherPointSample with a usable value becomes its weather.* point at its own time."""
    samples = _run(lambda _: httpx.Response(200, json=body), lambda client: client.get_weather("s"))
    want = [
        WeatherSample(point, body[field]["time"], value)
        for field, point in WEATHER_POINTS.items()
        if body.get(field) is not None and (value := _documented_value(body[field]["value"])) is not None
    ]
    assert samples == want


@BOUNDED
@given(
    samples=st.lists(payloads(PointSample), max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
)
def test_vendor_point_samples_pass_untouched(samples: list[dict[str, Any]], cuts: list[int]) -> None:
    """PointSample pages (empty ones too) walked by cursor yield every sample as sent, in order."""
    bounds = sorted([0, len(samples), *(min(c, len(samples)) for c in cuts)])  # a repeated cut: empty page
    pages = [samples[a:b] for a, b in itertools.pairwise(bounds)]

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("cursor", "0"))
        last = number == len(pages) - 1
        cursor = None if last else str(number + 1)
        return httpx.Response(
            200, json={"point_samples": pages[number], "next_cursor": cursor, "has_more": not last}
        )

    async def walk(client: AceClient) -> list[dict[str, Any]]:
        return [s async for page in client.iter_timeseries("s", 0, 60_000) for s in said(page.samples)]

    assert _run(handler, walk) == samples
