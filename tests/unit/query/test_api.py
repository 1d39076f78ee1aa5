"""The HTTP layer alone (service stubbed): routing, parameter errors, error policy, access control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streamer.errors import ConfigError, QueryError, SinkTransientError
from streamer.package_data import VENDOR, resource_files
from streamer.query.api import build_app, check_access, is_loopback, mount
from streamer.query.params import TimeRange
from streamer.query.service import QueryService
from streamer.settings import Settings


class StubService(QueryService):
    """Records calls; answers fixed rows; can be told to fail."""

    def __init__(self, settings: Settings, fail: Exception | None = None) -> None:
        super().__init__(settings)
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    async def samples(
        self, site: str, points: list[str], time_range: TimeRange, resolution: str
    ) -> dict[str, Any]:
        self.calls.append((site, points, time_range, resolution))
        if self.fail is not None:
            raise self.fail
        rows = [{"point_name": "a", "timestamp": time_range.start_ms, "value": 1.5}]
        return {"site": site, "columns": ["point_name", "timestamp", "value"], "rows": rows, "row_count": 1}

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "clickhouse": {"reachable": True}}

    async def close(self) -> None:
        self.calls.append(("closed",))


@pytest.fixture
async def stub(base_settings: Settings) -> StubService:
    return StubService(base_settings)


async def _client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def client(
    base_settings: Settings, stub: StubService
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async for c in _client(build_app(base_settings, stub)):
        yield c


async def test_samples_parses_parameters_for_the_service(
    client: TestClient[Any, Any], stub: StubService
) -> None:
    """ISO and epoch-ms times, comma points and the resolution reach the service parsed."""
    response = await client.get(
        "/api/v1/sites/s1/samples",
        params={"points": "a,b", "start": "1970-01-01T00:00:01Z", "end": "5000", "resolution": "1h"},
    )
    assert response.status == 200
    assert stub.calls == [("s1", ["a", "b"], TimeRange(1000, 5000), "1h")]
    assert (await response.json())["rows"] == [{"point_name": "a", "timestamp": 1000, "value": 1.5}]


async def test_samples_csv(client: TestClient[Any, Any]) -> None:
    """format=csv answers text/csv with a header row and one line per row."""
    response = await client.get(
        "/api/v1/sites/s1/samples", params={"points": "a", "start": "0", "end": "10", "format": "csv"}
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert await response.text() == "point_name,timestamp,value\na,0,1.5\n"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"points": "a", "start": "10", "end": "5"}, "must be before end"),
        ({"points": "a", "resolution": "10s"}, "resolution='10s' is not one of"),
        ({"start": "0", "end": "5"}, "points is missing"),
        ({"points": "a", "start": "soon"}, "start='soon' is not a time"),
        ({"points": "a", "format": "xml"}, "format='xml'"),
    ],
)
async def test_bad_samples_parameters_are_400_with_a_message(
    client: TestClient[Any, Any], stub: StubService, query: dict[str, str], message: str
) -> None:
    """Each bad parameter is a 400 JSON error naming it; the service is never asked."""
    response = await client.get("/api/v1/sites/s1/samples", params=query)
    assert response.status == 400
    body = await response.json()
    assert message in body["error"] and body["status"] == 400
    assert stub.calls == []


async def test_service_errors_map_to_their_status(base_settings: Settings) -> None:
    """QueryError keeps its status (404), an outage is 503, a bug is a logged 500 with no detail."""
    cases = [
        (QueryError("unknown site 'x'", status=404), 404, "unknown site"),
        (SinkTransientError("ClickHouse down"), 503, "ClickHouse down"),
        (RuntimeError("secret detail"), 500, "internal error"),
    ]
    for error, status, text in cases:
        async for client in _client(build_app(base_settings, StubService(base_settings, fail=error))):
            response = await client.get("/api/v1/sites/x/samples", params={"points": "a"})
            body = await response.json()
            assert (response.status, body["status"]) == (status, status)
            assert text in body["error"] and "secret detail" not in body["error"]


async def test_unknown_route_is_json_404(client: TestClient[Any, Any]) -> None:
    """Paths outside the API answer a JSON 404, not an HTML page."""
    response = await client.get("/api/v1/nothing")
    assert response.status == 404
    assert (await response.json())["status"] == 404


async def test_page_and_static_files_are_served(client: TestClient[Any, Any]) -> None:
    """/ and /ui/ serve the page; its scripts, stylesheet and the vendored uPlot come from /static/."""
    for path in ("/", "/ui/"):
        response = await client.get(path)
        assert response.status == 200 and '<div id="chart"' in await response.text()
    assert "streamerChart" in await (await client.get("/static/app.js")).text()
    assert (await client.get("/static/style.css")).status == 200
    for asset in resource_files(VENDOR):
        answer = await client.get(f"/static/vendor/{asset.name}")
        assert answer.status == 200 and await answer.read() == asset.read_bytes(), asset.name


def test_loopback_detection() -> None:
    """127.0.0.0/8, ::1 and localhost are loopback; 0.0.0.0 and a LAN address are not."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.org"))


def test_non_loopback_bind_without_token_refuses_to_start(base_settings: Settings) -> None:
    """Bound to 0.0.0.0 without api_token, build_app and mount raise ConfigError naming the setting."""
    exposed = base_settings.model_copy(update={"api_host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="STREAMER_API_TOKEN"):
        build_app(exposed, StubService(exposed))
    with pytest.raises(ConfigError, match="STREAMER_API_TOKEN"):
        mount(web.Application(), base_settings, StubService(base_settings), bind_host="10.1.2.3")
    check_access(exposed.model_copy(update={"api_token": SecretStr("t0ken")}), "0.0.0.0")


async def test_token_is_required_on_data_routes(base_settings: Settings) -> None:
    """With a token: 401 without or with a wrong one, 200 with it; /health and the page stay public."""
    settings = base_settings.model_copy(update={"api_host": "0.0.0.0", "api_token": SecretStr("s3cret")})
    async for client in _client(build_app(settings, StubService(settings))):
        url, params = "/api/v1/sites/s1/samples", {"points": "a"}
        assert (await client.get(url, params=params)).status == 401
        wrong = await client.get(url, params=params, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and "s3cret" not in await wrong.text()
        bare = await client.get(url, params=params, headers={"Authorization": "s3cret"})
        assert bare.status == 401
        right = await client.get(url, params=params, headers={"Authorization": "Bearer s3cret"})
        assert right.status == 200
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/health")).status == 200
        assert (await client.get("/")).status == 200
        doc = await (await client.get("/api/v1/openapi.json")).json()
        assert doc["security"] == [{"bearer": []}]


async def test_mount_adds_routes_to_a_host_app_and_keeps_its_index(base_settings: Settings) -> None:
    """Mounted into an app that already serves /, the API and /ui/ are added and / stays the host's."""
    host = web.Application()

    async def index(_: web.Request) -> web.Response:
        return web.json_response({"status": "OK"})

    host.router.add_get("/", index)
    mount(host, base_settings, StubService(base_settings))
    async for client in _client(host):
        assert await (await client.get("/")).json() == {"status": "OK"}
        assert (await client.get("/ui/")).status == 200
        assert (await client.get("/api/v1/sites/s/samples", params={"points": "a"})).status == 200


async def test_sql_body_forms(base_settings: Settings) -> None:
    """POST /sql takes {"sql": ...} JSON only (plain text is 415); malformed JSON and switched-off SQL
    are 4xx."""
    off = base_settings.model_copy(update={"api_sql_enabled": False})
    async for client in _client(build_app(off, StubService(off))):
        response = await client.post("/api/v1/sql", json={"sql": "SELECT 1"})
        assert response.status == 403 and "STREAMER_API_SQL_ENABLED" in (await response.json())["error"]
        text = await client.post("/api/v1/sql", data="SELECT 1", headers={"Content-Type": "text/plain"})
        assert text.status == 415 and "application/json" in (await text.json())["error"]
        bad = await client.post("/api/v1/sql", data=b"{", headers={"Content-Type": "application/json"})
        assert bad.status == 400 and "not JSON" in (await bad.json())["error"]
        shape = await client.post("/api/v1/sql", json={"query": "SELECT 1"})
        assert shape.status == 400 and '"sql"' in (await shape.json())["error"]


async def test_app_cleanup_closes_the_service(base_settings: Settings, stub: StubService) -> None:
    """Stopping the stand-alone app closes the query service (and so its ClickHouse clients)."""
    async for client in _client(build_app(base_settings, stub)):
        assert (await client.get("/health")).status == 200
    assert stub.calls == [("closed",)]


async def test_samples_with_epoch_seconds_are_accepted_with_a_warning(
    client: TestClient[Any, Any], stub: StubService
) -> None:
    """start=17961 (epoch seconds, or days, sent as ms) is still read as ms; the answer says so."""
    response = await client.get("/api/v1/sites/s1/samples", params={"points": "a", "start": "17961"})
    assert response.status == 200
    assert stub.calls[0][2].start_ms == 17961
    (warning,) = (await response.json())["warnings"]
    assert warning.startswith("start=17961 is read as epoch milliseconds, 1970-01-01T00:00:17.961Z")
    plain = await client.get("/api/v1/sites/s1/samples", params={"points": "a", "start": "1704067200000"})
    assert "warnings" not in await plain.json()
