"""AceClient over a mock API: auth header, paged list envelopes, weather."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.ace.weather import WeatherSample
from streamer.errors import AceClientError, AceRetriesExhausted, ConfigError
from tests.unit.ace.conftest import ClientFactory
from tests.unit.ace.helpers import TOKEN, FakeSleep, json_response


def _points_api(pages: list[list[Any]], total_key: str = "total") -> tuple[list[httpx.Request], Any]:
    seen: list[httpx.Request] = []
    total = sum(len(items) for items in pages)
    per_page = max(len(items) for items in pages) or 1

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = int(request.url.params["page"])
        body = {
            "page": page,
            "pages": len(pages),
            "per_page": per_page,
            total_key: total,
            "items": pages[page - 1],
        }
        return json_response(body)

    return seen, handler


async def test_every_request_carries_the_bearer_token(make_client: ClientFactory) -> None:
    """`authorization: Bearer <token>` is on each request, first page and later ones."""
    seen, handler = _points_api([[{"name": "s/a"}], [{"name": "s/b"}]])
    await make_client(handler).list_points("s")
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {TOKEN}"] * 2


async def test_token_file_is_used(make_client: ClientFactory, tmp_path: Path) -> None:
    """A token given as a file (ace_token_file) is read and sent."""
    token_file = tmp_path / "token"
    token_file.write_text("file-token-123\n")
    seen, handler = _points_api([[{"name": "s/a"}]])
    await make_client(handler, ace_token=None, ace_token_file=token_file).list_points("s")
    assert seen[0].headers["authorization"] == "Bearer file-token-123"


def test_a_token_with_control_characters_is_refused(ace_settings: Any) -> None:
    """A token that would break the header is a ConfigError that does not echo the token."""
    bad = "abc\r\nX-Evil: 1"
    with pytest.raises(ConfigError) as info:
        AceClient(ace_settings.model_copy(update={"ace_token": SecretStr(bad)}))
    assert bad not in str(info.value) and "abc" not in str(info.value)


async def test_points_walks_pages_one_to_pages(make_client: ClientFactory) -> None:
    """configured_points is walked page=1..pages with per_page; all items come back in page order."""
    pages = [[{"name": f"s/p{i}"}, {"name": f"s/q{i}"}] for i in range(5)]
    seen, handler = _points_api(pages)
    points = await make_client(handler).list_points("s")
    assert sorted(int(r.url.params["page"]) for r in seen) == [1, 2, 3, 4, 5]
    assert {r.url.path for r in seen} == {"/api/sites/s/configured_points"}
    assert {r.url.params["per_page"] for r in seen} == {"100"}
    assert [p.name for p in points] == [item["name"] for page in pages for item in page]


async def test_points_accepts_total_items(make_client: ClientFactory) -> None:
    """An envelope with total_items instead of total is walked the same way."""
    seen, handler = _points_api([[{"name": "s/a"}], [{"name": "s/b"}]], total_key="total_items")
    points = await make_client(handler).list_points("s")
    assert [p.name for p in points] == ["s/a", "s/b"]
    assert len(seen) == 2


async def test_point_items_are_tolerant(make_client: ClientFactory) -> None:
    """Only name is required; unknown fields kept; a malformed optional field falls back; no name: skipped."""
    items = [
        {"name": "s/a", "kv_tags": {"unit": "degF"}, "vendor_field": {"x": 1}, "collect_enabled": False},
        {"name": "s/b", "marker_tags": "not-a-list", "point_type": "analog"},
        {"site": "s"},
        {"name": ""},
        "garbage",
    ]
    _, handler = _points_api([items])
    points = await make_client(handler).list_points("s")
    assert [p.name for p in points] == ["s/a", "s/b"]
    assert points[0].model_extra == {"vendor_field": {"x": 1}}
    assert (points[0].kv_tags, points[0].collect_enabled) == ({"unit": "degF"}, False)
    assert (points[1].marker_tags, points[1].point_type) == ([], "analog")


async def test_list_sites(make_client: ClientFactory) -> None:
    """GET /sites/ is paged like points and returns AceSite items with collect/archived flags."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        items = [{"name": "s1"}, {"name": "s2", "archived": True, "collect_enabled": False}]
        return json_response({"page": 1, "pages": 1, "total": 2, "items": items})

    sites = await make_client(handler).list_sites()
    assert [(s.name, s.collect_enabled, s.archived) for s in sites] == [
        ("s1", True, False),
        ("s2", False, True),
    ]
    assert seen[0].url.path == "/api/sites/"


async def test_weather_object_shape(make_client: ClientFactory) -> None:
    """GET /sites/{site}/weather with per-field objects gives weather.* samples."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        t = "2024-01-01T00:05:00Z"
        return json_response(
            {"temp": {"value": 72.5, "time": t, "units": "degF"}, "wind_deg": {"value": 90, "time": t}}
        )

    weather = await make_client(handler).get_weather("s1")
    assert weather == [
        WeatherSample("weather.temperature", "2024-01-01T00:05:00Z", 72.5),
        WeatherSample("weather.wind_direction", "2024-01-01T00:05:00Z", 90.0),
    ]
    assert seen[0].url.path == "/api/sites/s1/weather"


async def test_weather_plain_shape(make_client: ClientFactory) -> None:
    """Plain numbers with a shared dt are accepted too."""

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response({"humidity": 41, "clouds": None, "dt": 1704067200})

    weather = await make_client(handler).get_weather("s1")
    assert weather == [WeatherSample("weather.humidity", "2024-01-01T00:00:00.000Z", 41.0)]


async def test_site_names_are_one_path_segment(make_client: ClientFactory) -> None:
    """A site name with a slash is escaped, never turned into extra path segments."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response({"temp": 1, "time": "2024-01-01T00:00:00Z"})

    await make_client(handler).get_weather("a/b")
    assert seen[0].url.raw_path == b"/api/sites/a%2Fb/weather"


async def test_a_failed_page_fails_the_listing(make_client: ClientFactory) -> None:
    """One page answering 404 fails list_points with AceClientError; no partial list comes back."""
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        seen.append(page)
        if page == 3:
            return httpx.Response(404, text="gone")
        return json_response({"page": page, "pages": 6, "total": 6, "items": [{"name": f"s/p{page}"}]})

    with pytest.raises(AceClientError) as info:
        await make_client(handler, ace_max_concurrency=1).list_points("s")
    assert info.value.status == 404
    assert seen == [1, 2, 3]  # one worker: pages in order, nothing fetched after the failure


def _listing(*walks: list[dict[str, Any]]) -> tuple[list[int], Any]:
    """A handler serving walk 1's envelopes page by page, then walk 2's, ... (the last one repeats)."""
    seen: list[int] = []
    served: dict[int, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        seen.append(page)
        attempt = served.get(page, 0)
        served[page] = attempt + 1
        return json_response(walks[min(attempt, len(walks) - 1)][page - 1])

    return seen, handler


def _envelopes(
    pages: list[list[str]], *, per_page: int = 2, total: int | None = None
) -> list[dict[str, Any]]:
    count = sum(len(p) for p in pages) if total is None else total
    return [
        {
            "page": n,
            "pages": len(pages),
            "per_page": per_page,
            "total": count,
            "items": [{"name": x} for x in p],
        }
        for n, p in enumerate(pages, 1)
    ]


FULL = [["s/a", "s/b"], ["s/c", "s/d"], ["s/e"]]


async def test_a_short_page_is_retried_until_the_listing_is_whole(
    make_client: ClientFactory, fake_sleep: FakeSleep
) -> None:
    """Page 2 holding 1 of its 2 items (total 5) is not a removal: the listing is walked again."""
    short = _envelopes(FULL)
    short[1]["items"] = short[1]["items"][:1]
    _, handler = _listing(short, _envelopes(FULL))
    client = make_client(handler)
    points = await client.list_points("s")
    assert [p.name for p in points] == ["s/a", "s/b", "s/c", "s/d", "s/e"]
    assert client.stats.retries == {"list_mismatch": 1}
    assert fake_sleep.calls == [2.0]


def _disagreeing(kind: str) -> list[dict[str, Any]]:
    walk = _envelopes(FULL)
    if kind == "short-page":
        walk[1]["items"] = walk[1]["items"][:1]
    elif kind == "empty-page-before-the-last":
        walk[1]["items"] = []
    elif kind == "short-last-page":
        walk[2]["items"] = []
    elif kind == "total-changes":
        walk[2]["total"] = 6
    elif kind == "pages-changes":
        walk[1]["pages"] = 2
    elif kind == "duplicate":
        walk[1]["items"] = [{"name": "s/b"}, {"name": "s/c"}]
    elif kind == "total-items-short":
        walk = _envelopes([["s/a", "s/b"], ["s/c"]], total=4)
        for envelope in walk:
            envelope["total_items"] = envelope.pop("total")
    return walk


@pytest.mark.parametrize(
    "kind",
    [
        "short-page",
        "empty-page-before-the-last",
        "short-last-page",
        "total-changes",
        "pages-changes",
        "duplicate",
        "total-items-short",
    ],
)
async def test_a_listing_that_always_disagrees_fails(make_client: ClientFactory, kind: str) -> None:
    """Every way a listing disagrees with itself, on every attempt, fails the call: no partial list."""
    before = REGISTRY.get_sample_value("streamer_ace_list_mismatch_total", {"call": "configured_points"})
    _, handler = _listing(_disagreeing(kind))
    client = make_client(handler)
    with pytest.raises(AceRetriesExhausted, match="gave up after 3 attempts; last error list_mismatch"):
        await client.list_points("s")
    assert client.stats.retries == {"list_mismatch": 2}
    after = REGISTRY.get_sample_value("streamer_ace_list_mismatch_total", {"call": "configured_points"})
    assert (after or 0) - (before or 0) == 3


async def test_a_sites_listing_that_disagrees_fails(make_client: ClientFactory) -> None:
    """GET /sites/ follows the same rule: a short page is never read as fewer sites."""
    walk = _envelopes([["a", "b"], ["c"]])
    walk[0]["items"] = walk[0]["items"][:1]
    _, handler = _listing(walk)
    with pytest.raises(AceRetriesExhausted, match="list_mismatch"):
        await make_client(handler).list_sites()


async def test_items_without_a_name_still_count_towards_the_total(make_client: ClientFactory) -> None:
    """A junk item the total counts is skipped, and the listing still agrees with itself."""
    walk = _envelopes([["s/a", "s/b"], ["s/c"]])
    walk[1]["items"] = [{"name": "s/c"}]
    walk[0]["items"] = [{"name": "s/a"}, {"site": "s"}]
    _, handler = _listing(walk)
    client = make_client(handler)
    assert [p.name for p in await client.list_points("s")] == ["s/a", "s/c"]
    assert client.stats.retries == {}


async def test_pages_beyond_the_cap_are_never_requested(make_client: ClientFactory) -> None:
    """`"pages": 1000000000` fails the listing (too_many_pages, counted) after page 1 of each attempt."""
    before = REGISTRY.get_sample_value("streamer_ace_limit_exceeded_total", {"reason": "too_many_pages"})
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(int(request.url.params["page"]))
        return json_response({"page": 1, "pages": 1_000_000_000, "total": 5, "items": [{"name": "s/a"}]})

    with pytest.raises(
        AceRetriesExhausted, match="too_many_pages: listing says 1000000000 pages, over the cap of 50"
    ):
        await make_client(handler, ace_max_list_pages=50).list_points("s")
    assert seen == [1, 1, 1]
    after = REGISTRY.get_sample_value("streamer_ace_limit_exceeded_total", {"reason": "too_many_pages"})
    assert (after or 0) - (before or 0) == 3


async def test_the_api_clock_follows_the_latest_date_header(make_client: ClientFactory) -> None:
    """api_now_ms is the local wall clock moved by the latest Date's offset; None before any Date."""
    dates = ["Fri, 01 Mar 2024 12:00:00 GMT", None, "Fri, 01 Mar 2024 12:10:00 GMT", "not a date"]
    wall = [1_800_000_000.0]

    def handler(request: httpx.Request) -> httpx.Response:
        date = dates.pop(0)
        return json_response(
            {"temp": 1, "time": "2024-01-01T00:00:00Z"}, headers={"date": date} if date else {}
        )

    client = make_client(handler, wall_clock=lambda: wall[0])
    assert client.api_now_ms() is None
    await client.get_weather("s1")
    assert client.api_now_ms() == 1_709_294_400_000  # 2024-03-01T12:00:00Z
    wall[0] += 30
    assert client.api_now_ms() == 1_709_294_430_000  # the offset holds while time passes
    await client.get_weather("s1")  # no Date: the last offset stays
    assert client.api_now_ms() == 1_709_294_430_000
    await client.get_weather("s1")  # a later Date replaces it
    assert client.api_now_ms() == 1_709_295_000_000
    await client.get_weather("s1")  # an unusable one is ignored
    assert client.api_now_ms() == 1_709_295_000_000
