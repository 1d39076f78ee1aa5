"""AceClient error handling: 401, other 4xx, 429 Retry-After, 5xx/network/JSON retries, metrics, budgets."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from streamer.errors import AceAuthError, AceClientError, AceRetriesExhausted
from tests.unit.ace.conftest import ClientFactory
from tests.unit.ace.helpers import TOKEN, FakeSleep, json_response

WEATHER = {"temp": 72.5, "time": "2024-01-01T00:00:00Z"}


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _then_ok(*failures: httpx.Response | Exception) -> tuple[list[httpx.Request], object]:
    """A handler failing with each of ``failures`` in turn, then answering the weather body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= len(failures):
            failure = failures[len(seen) - 1]
            if isinstance(failure, Exception):
                raise failure
            return failure
        return json_response(WEATHER)

    return seen, handler


async def test_401_raises_auth_error_naming_the_site_without_retry(
    make_client: ClientFactory, fake_sleep: FakeSleep
) -> None:
    """401 → AceAuthError that names the site; exactly one request, no wait."""
    seen, handler = _then_ok(httpx.Response(401, text="bad token"), httpx.Response(401))
    with pytest.raises(AceAuthError, match="for site ses_falls_city") as info:
        await make_client(handler).get_weather("ses_falls_city")
    assert (len(seen), fake_sleep.calls) == (1, [])
    assert "401" in str(info.value)


async def test_401_on_site_listing_has_no_site(make_client: ClientFactory) -> None:
    """A 401 on /sites/ still raises AceAuthError, with no made-up site name."""
    _, handler = _then_ok(httpx.Response(401))
    with pytest.raises(AceAuthError) as info:
        await make_client(handler).list_sites()
    assert "site" not in str(info.value).replace("/sites/", "")


async def test_other_4xx_is_a_client_error_with_a_short_token_free_excerpt(
    make_client: ClientFactory, fake_sleep: FakeSleep
) -> None:
    """404 → AceClientError(status) with a <=200-char excerpt of the body, token masked, no retry."""
    body = f"Point not found for request with token {TOKEN}\n\n" + "x" * 1000
    seen, handler = _then_ok(httpx.Response(404, text=body))
    with pytest.raises(AceClientError) as info:
        await make_client(handler).get_weather("s1")
    error = info.value
    excerpt = str(error).split("HTTP 404: ", 1)[1]
    assert error.status == 404
    assert len(excerpt) == 200 and excerpt.endswith("...")
    assert excerpt.startswith("Point not found for request with token **********")
    assert TOKEN not in str(error)
    assert (len(seen), fake_sleep.calls) == (1, [])


async def test_429_retry_after_seconds(make_client: ClientFactory, fake_sleep: FakeSleep) -> None:
    """429 with Retry-After: 7 waits exactly 7 s (through the injected sleep), then retries and succeeds."""
    seen, handler = _then_ok(httpx.Response(429, headers={"Retry-After": "7"}))
    assert len(await make_client(handler).get_weather("s1")) == 1
    assert (len(seen), fake_sleep.calls) == (2, [7.0])


async def test_429_retry_after_http_date(make_client: ClientFactory, fake_sleep: FakeSleep) -> None:
    """429 with Retry-After as an HTTP date waits until that date (second resolution), then retries."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seen, handler = _then_ok(httpx.Response(429, headers={"Retry-After": when}))
    await make_client(handler).get_weather("s1")
    assert len(seen) == 2 and len(fake_sleep.calls) == 1
    assert 28.0 < fake_sleep.calls[0] <= 30.0


async def test_429_without_retry_after_backs_off(make_client: ClientFactory, fake_sleep: FakeSleep) -> None:
    """429 without Retry-After falls back to the jittered backoff (rng=1: the 2 s base)."""
    _, handler = _then_ok(httpx.Response(429))
    await make_client(handler).get_weather("s1")
    assert fake_sleep.calls == [2.0]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.Response(500), "server_error"),
        (httpx.Response(503, headers={"Retry-After": "1"}), "server_error"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.ConnectError("connection refused"), "connection"),
        (httpx.Response(200, content=b'{"temp": 72.5, "ti'), "invalid_json"),
        (httpx.Response(200, content=b"<html>gateway</html>"), "invalid_json"),
        (httpx.Response(200, content=b"[1, 2]"), "invalid_body"),
    ],
)
async def test_transient_failures_are_retried_and_counted(
    make_client: ClientFactory, failure: httpx.Response | Exception, reason: str
) -> None:
    """Each transient failure kind is retried once and counted by reason in API_RETRIES and stats."""
    before = _metric("streamer_ace_retries_total", reason=reason)
    seen, handler = _then_ok(failure)
    client = make_client(handler)
    assert len(await client.get_weather("s1")) == 1
    assert len(seen) == 2
    assert client.stats.retries == {reason: 1}
    assert _metric("streamer_ace_retries_total", reason=reason) == before + 1


async def test_body_cut_mid_transfer_is_retried(make_client: ClientFactory) -> None:
    """A connection dropped while the body streams in is a transient 'connection' failure."""

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"temp": 72.5, '
            raise httpx.ReadError("connection reset by peer")

    seen, handler = _then_ok(httpx.Response(200, stream=Broken()))
    client = make_client(handler)
    assert len(await client.get_weather("s1")) == 1
    assert (len(seen), client.stats.retries) == (2, {"connection": 1})


async def test_whole_attempt_deadline(make_client: ClientFactory) -> None:
    """A server slower than ace_timeout_s as a whole is a timeout, retried, then exhausted."""
    calls = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(5)
        return json_response(WEATHER)

    with pytest.raises(AceRetriesExhausted, match="last error timeout"):
        await make_client(slow, ace_timeout_s=0.05).get_weather("s1")
    assert calls == 3


async def test_exhausted_retries_name_path_site_and_reason(
    make_client: ClientFactory, fake_sleep: FakeSleep
) -> None:
    """After ace_max_attempts 5xx: AceRetriesExhausted naming path, site, last reason; waits 2 s then 4 s."""
    seen, handler = _then_ok(*[httpx.Response(502)] * 5)
    with pytest.raises(AceRetriesExhausted) as info:
        await make_client(handler).get_weather("s1")
    assert str(info.value) == (
        "GET /sites/s1/weather (site s1): gave up after 3 attempts; last error server_error: HTTP 502"
    )
    assert (len(seen), fake_sleep.calls) == (3, [2.0, 4.0])


async def test_backoff_is_capped_and_jittered(make_client: ClientFactory, fake_sleep: FakeSleep) -> None:
    """Backoff ceilings double up to ace_backoff_max_s; the injected rng scales each wait."""
    _, handler = _then_ok(*[httpx.Response(500)] * 5)
    await make_client(handler, ace_max_attempts=6, ace_backoff_max_s=5.0, rng=lambda: 0.5).get_weather("s1")
    assert fake_sleep.calls == [1.0, 2.0, 2.5, 2.5, 2.5]


async def test_request_latency_is_observed(make_client: ClientFactory) -> None:
    """Every attempt, failed or not, is observed in API_REQUEST_SECONDS under the endpoint label."""
    before = _metric("streamer_ace_request_seconds_count", endpoint="weather")
    _, handler = _then_ok(httpx.Response(503), httpx.ConnectError("refused"))
    await make_client(handler).get_weather("s1")
    assert _metric("streamer_ace_request_seconds_count", endpoint="weather") == before + 3


async def test_rate_budget_spaces_requests_per_site(
    make_client: ClientFactory, fake_sleep: FakeSleep
) -> None:
    """ace_requests_per_s=2: the third and fourth back-to-back calls of a site wait; another site does not."""
    _, handler = _then_ok()
    client = make_client(handler, ace_requests_per_s=2.0, clock=lambda: 0.0)
    for site in ("a", "a", "a", "a", "b"):
        await client.get_weather(site)
    assert fake_sleep.calls == [0.5, 1.0]


async def test_concurrency_budget_per_site(make_client: ClientFactory) -> None:
    """ace_max_concurrency=2: at most 2 requests of one site in flight, while another site runs too."""
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        site = request.url.path.split("/")[3]
        in_flight[site] = in_flight.get(site, 0) + 1
        peak[site] = max(peak.get(site, 0), in_flight[site])
        await asyncio.sleep(0.01)
        in_flight[site] -= 1
        return json_response(WEATHER)

    client = make_client(handler, ace_max_concurrency=2)
    await asyncio.gather(*(client.get_weather(site) for site in "aaaaaabbbbbb"))
    assert peak == {"a": 2, "b": 2}
