"""Over real HTTP: injected faults appear at their rates and a retrying walk still gets everything."""

from __future__ import annotations

import time
from collections import Counter
from email.utils import parsedate_to_datetime

import httpx
import orjson
import pytest

from streamer.sim import FaultConfig, SimConfig, SimServer, expected
from tests.integration.sim.helpers import AUTH, HOUR, T0, configured_points, summarise, walk_window


def _faulty(**faults: object) -> SimConfig:
    return SimConfig(sites=("alpha", "beta"), points=200, faults=FaultConfig(**faults))  # type: ignore[arg-type]


def _window(i: int) -> dict[str, object]:
    return {"start_time": str(T0 + i * 60_000), "end_time": str(T0 + (i + 1) * 60_000), "page_size": 50}


async def test_faults_appear_at_the_configured_rates() -> None:
    """First attempts of distinct requests fail at ~the rates asked, and /_sim/stats counts them exactly."""
    config = _faulty(rate_5xx=0.2, rate_429=0.1, rate_truncate=0.05, seed=3, retry_after_s=0)
    async with SimServer(config) as server, httpx.AsyncClient(headers=AUTH) as client:
        outcomes: Counter[str] = Counter()
        for i in range(600):
            response = await client.get(f"{server.url}/sites/alpha/timeseries/paginated", params=_window(i))
            if response.status_code == 200:
                try:
                    orjson.loads(response.content)
                    outcomes["ok"] += 1
                except orjson.JSONDecodeError:
                    outcomes["truncated"] += 1
            else:
                outcomes["5xx" if response.status_code >= 500 else str(response.status_code)] += 1
        stats = (await client.get(f"{server.url}/_sim/stats")).json()
    assert abs(outcomes["5xx"] / 600 - 0.2) < 0.05
    assert abs(outcomes["429"] / 600 - 0.1) < 0.04
    assert abs(outcomes["truncated"] / 600 - 0.05) < 0.03
    assert outcomes["ok"] + outcomes["5xx"] + outcomes["429"] + outcomes["truncated"] == 600
    assert {k: stats["faults"].get(k, 0) for k in ("5xx", "429", "truncated")} == {
        k: outcomes[k] for k in ("5xx", "429", "truncated")
    }


async def test_retrying_walk_equals_the_fault_free_result() -> None:
    """With 5xx, 429 and truncation on every endpoint, a client retrying 3 times ends with expected()."""
    # A fixed seed: failures are then certain (with seed=None about 2 % of runs drew none at all).
    config = _faulty(rate_5xx=0.2, rate_429=0.1, rate_truncate=0.1, retry_after_s=0, seed=11)
    start, end = T0, T0 + HOUR
    async with SimServer(config) as server, httpx.AsyncClient(headers=AUTH, timeout=30) as client:
        walk = await walk_window(client, server.url, "beta", start, end, page_size=2000, attempts=3)
        await client.post(
            f"{server.url}/_sim/faults", json={"rate_5xx": 0, "rate_429": 0, "rate_truncate": 0}
        )
        points = await configured_points(client, server.url, "beta")
    assert walk.failures > 0
    assert summarise("beta", start, end, walk.samples, points) == expected(config, "beta", start, end)


async def test_429_says_retry_after_in_seconds_and_dates() -> None:
    """Retry-After comes as whole seconds and as an HTTP date in the future."""
    config = _faulty(rate_429=1.0, retry_after_s=2, retry_after_date_share=0.5, max_streak=1000, seed=8)
    async with SimServer(config) as server, httpx.AsyncClient(headers=AUTH) as client:
        headers = [
            (await client.get(f"{server.url}/sites/alpha/weather", params={"i": i})).headers["retry-after"]
            for i in range(40)
        ]
    seconds = [h for h in headers if h.isdigit()]
    dates = [parsedate_to_datetime(h).timestamp() for h in headers if not h.isdigit()]
    assert seconds and set(seconds) == {"2"}
    assert dates and min(dates) >= time.time() + 1  # the 2 s asked, rounded up to whole seconds


async def test_unauthorized_sites_get_401_and_can_change_at_runtime() -> None:
    """Chosen sites answer 401 on every endpoint; the set can change while the server runs."""
    async with (
        SimServer(_faulty(unauthorized_sites=frozenset({"alpha"}))) as server,
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        for path in ("configured_points", "weather", "timeseries/paginated"):
            assert (
                await client.get(f"{server.url}/sites/alpha/{path}", params=_window(0))
            ).status_code == 401
        assert (await client.get(f"{server.url}/sites/beta/weather")).status_code == 200
        changed = await client.post(f"{server.url}/_sim/faults", json={"unauthorized_sites": ["beta"]})
        assert changed.json()["unauthorized_sites"] == ["beta"]
        assert (await client.get(f"{server.url}/sites/beta/weather")).status_code == 401
        assert (await client.get(f"{server.url}/sites/alpha/weather")).status_code == 200
        bad = await client.post(f"{server.url}/_sim/faults", json={"rate_5xx": 2})
        assert bad.status_code == 400


async def test_slow_pages_and_transfer_limit() -> None:
    """Slow responses take the delay; pages above the transfer limit always break off mid-body."""
    async with (
        SimServer(_faulty(rate_slow=1.0, slow_ms=150, transfer_limit=100)) as server,
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        url = f"{server.url}/sites/alpha/timeseries/paginated"
        started = time.monotonic()
        small = await client.get(url, params={**_window(0), "page_size": 100})
        assert time.monotonic() - started >= 0.15
        assert len(orjson.loads(small.content)["point_samples"]) == 100
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|without sending complete"):
                await client.get(url, params={**_window(0), "page_size": 101})
        stats = (await client.get(f"{server.url}/_sim/stats")).json()
    assert stats["faults"]["transfer_limit"] == 3


async def test_short_points_pages_at_their_share_and_switchable() -> None:
    """--short-points-pages 0.3: about 30 % of configured-points pages hold half their items under an
    unchanged envelope; the timeseries is untouched; /_sim/faults switches it off while running."""
    config = _faulty(short_points_pages=0.3, seed=4, max_streak=1000)
    async with SimServer(config) as server, httpx.AsyncClient(headers=AUTH) as client:
        url = f"{server.url}/sites/alpha/configured_points"
        shorts = 0
        for i in range(200):
            page = 1 + i % 4
            body = (await client.get(url, params={"page": page, "per_page": 50, "i": i})).json()
            full = min(50, body["total"] - (page - 1) * 50)
            assert len(body["items"]) in (full, full // 2)
            shorts += len(body["items"]) < full
        series = await client.get(f"{server.url}/sites/alpha/timeseries/paginated", params=_window(0))
        assert series.status_code == 200 and orjson.loads(series.content)["point_samples"]
        switched = await client.post(f"{server.url}/_sim/faults", json={"short_points_pages": 0})
        assert switched.json()["short_points_pages"] == 0
        after = [
            (await client.get(url, params={"page": 1, "per_page": 50, "j": j})).json() for j in range(20)
        ]
        stats = (await client.get(f"{server.url}/_sim/stats")).json()
    assert 40 <= shorts <= 80
    assert all(len(body["items"]) == 50 for body in after)
    assert stats["faults"]["short_points_page"] == shorts
