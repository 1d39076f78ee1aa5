"""Retry arithmetic and the retry loop of the ACE client."""

from __future__ import annotations

import email.utils
import time

import pytest

from streamer.ace.retry import AceTransient, RetryPolicy, backoff_delay, parse_retry_after, retrying
from streamer.errors import AceClientError, AceRetriesExhausted
from tests.unit.ace.helpers import FakeSleep

POLICY = RetryPolicy(max_attempts=3, base_s=2.0, cap_s=30.0)


def test_backoff_is_exponential_and_capped_at_full_jitter_ceiling() -> None:
    """With rng=1 the delay is the ceiling: base * 2**(n-1), capped at cap_s."""
    delays = [backoff_delay(n, POLICY, lambda: 1.0) for n in range(1, 7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_full_jitter_scales_with_rng() -> None:
    """Full jitter: the delay is rng() times the ceiling, so 0 and half are reachable."""
    assert backoff_delay(3, POLICY, lambda: 0.5) == 4.0
    assert backoff_delay(3, POLICY, lambda: 0.0) == 0.0


def test_backoff_survives_huge_attempt_numbers() -> None:
    """A very late attempt neither overflows nor exceeds the cap."""
    assert backoff_delay(10_000, POLICY, lambda: 1.0) == 30.0


def test_retry_after_seconds() -> None:
    """Retry-After in delta seconds is taken as is; negative clamps to 0."""
    assert parse_retry_after("120", now_s=0.0) == 120.0
    assert parse_retry_after(" 1.5 ", now_s=0.0) == 1.5
    assert parse_retry_after("-4", now_s=0.0) == 0.0


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is the distance from now; a past date means now."""
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 45, usegmt=True), now_s=now) == 45.0
    assert parse_retry_after(email.utils.formatdate(now - 45, usegmt=True), now_s=now) == 0.0


def test_retry_after_unusable_values() -> None:
    """Missing, blank, garbage or infinite Retry-After gives None (fall back to backoff)."""
    for value in (None, "", "  ", "soon", "inf", "nan"):
        assert parse_retry_after(value, now_s=0.0) is None, value


async def test_retrying_recovers_after_transient_failures() -> None:
    """Two transient failures then success: result returned, backoff waits 2 s then 4 s."""
    sleep, calls = FakeSleep(), []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AceTransient("server_error", "HTTP 503")
        return "ok"

    assert await retrying(attempt, policy=POLICY, what="GET /x", sleep=sleep, rng=lambda: 1.0) == "ok"
    assert len(calls) == 3
    assert sleep.calls == [2.0, 4.0]


async def test_retrying_gives_up_with_a_descriptive_error() -> None:
    """After max_attempts transient failures: AceRetriesExhausted naming the call and the last reason."""
    sleep = FakeSleep()

    async def attempt() -> str:
        raise AceTransient("timeout", "no complete answer within 5s")

    with pytest.raises(AceRetriesExhausted) as info:
        await retrying(
            attempt, policy=POLICY, what="GET /sites/s1/weather (site s1)", sleep=sleep, rng=lambda: 1.0
        )
    assert str(info.value) == (
        "GET /sites/s1/weather (site s1): gave up after 3 attempts; "
        "last error timeout: no complete answer within 5s"
    )
    assert sleep.calls == [2.0, 4.0]  # no wait after the final attempt


async def test_retrying_does_not_retry_permanent_errors() -> None:
    """A permanent error escapes on the first attempt, without any wait."""
    sleep, calls = FakeSleep(), []

    async def attempt() -> str:
        calls.append(1)
        raise AceClientError("HTTP 404", status=404)

    with pytest.raises(AceClientError):
        await retrying(attempt, policy=POLICY, what="GET /x", sleep=sleep, rng=lambda: 1.0)
    assert (len(calls), sleep.calls) == (1, [])


async def test_retrying_honours_retry_after_over_backoff() -> None:
    """A server-given Retry-After replaces the backoff delay."""
    sleep, calls = FakeSleep(), []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise AceTransient("rate_limited", "HTTP 429", retry_after_s=7.0)
        return "ok"

    assert await retrying(attempt, policy=POLICY, what="GET /x", sleep=sleep, rng=lambda: 1.0) == "ok"
    assert sleep.calls == [7.0]


async def test_retrying_fails_fast_on_an_excessive_retry_after() -> None:
    """Retry-After beyond the cap fails the call at once instead of parking the loop for an hour."""
    sleep = FakeSleep()

    async def attempt() -> str:
        raise AceTransient("rate_limited", "HTTP 429", retry_after_s=3600.0)

    started = time.perf_counter()
    with pytest.raises(AceRetriesExhausted, match="asked to wait 3600s"):
        await retrying(attempt, policy=POLICY, what="GET /x", sleep=sleep, rng=lambda: 1.0)
    assert sleep.calls == []
    assert time.perf_counter() - started < 1.0
