"""Retry policy of the ACE client: backoff with full jitter, Retry-After, and the attempt loop.

The delay arithmetic is pure (seeded by an injected ``rng`` and ``now``) so tests pin exact values;
``retrying`` is the thin async loop around it. Only ``AceTransient`` failures are retried: every other
error (401, other 4xx, pagination) passes straight through on the first attempt.
"""

from __future__ import annotations

import email.utils
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from streamer.errors import AceRetriesExhausted, AceTransientError
from streamer.logs import log_event
from streamer.metrics import API_RETRIES

T = TypeVar("T")
log = logging.getLogger("streamer.ace")

RETRY_AFTER_CAP_S = 600.0
"""A server asking for a longer pause fails the window instead of parking the site's loop for hours."""


class AceTransient(AceTransientError):
    """One failed attempt worth retrying, with a bounded ``reason`` label for metrics and messages.

    ``shrink`` marks failures of the transfer itself (timeout, connection reset, a body cut
    mid-transfer, 413, 504, a body over the byte cap): a smaller timeseries page is more likely to
    make it through. A 502/503 or a complete but invalid body is not one.
    """

    def __init__(
        self, reason: str, detail: str, *, shrink: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}", retry_after_s=retry_after_s)
        self.reason = reason
        self.shrink = shrink


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    cap_s: float


def backoff_delay(failed_attempt: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(n-1))] after the n-th failed attempt (n >= 1)."""
    exponent = min(failed_attempt - 1, 62)  # 2**62 already dwarfs any cap; avoids float overflow
    ceiling = min(policy.cap_s, policy.base_s * float(2**exponent))
    return max(0.0, rng()) * ceiling


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date); ``None`` if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means the zone was omitted
            return None
        seconds = when.timestamp() - now_s
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    error: AceTransient, failed_attempt: int, policy: RetryPolicy, rng: Callable[[], float]
) -> float:
    """The server's Retry-After when it gave one, else backoff with jitter."""
    if error.retry_after_s is not None:
        return error.retry_after_s
    return backoff_delay(failed_attempt, policy, rng)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], Awaitable[None]],
    rng: Callable[[], float],
    on_retry: Callable[[AceTransient], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, a permanent error escapes, or the attempts are spent.

    ``what`` names the call (endpoint path and site, never the token) in the exhaustion message.
    """
    last: AceTransient | None = None
    for number in range(1, max(1, policy.max_attempts) + 1):
        try:
            return await attempt()
        except AceTransient as exc:
            last = exc
            if number >= policy.max_attempts:
                break
            delay = retry_delay(exc, number, policy, rng)
            if delay > RETRY_AFTER_CAP_S:
                raise AceRetriesExhausted(
                    f"{what}: server asked to wait {delay:.0f}s (over {RETRY_AFTER_CAP_S:.0f}s); "
                    f"last error {exc}"
                ) from exc
            API_RETRIES.labels(reason=exc.reason).inc()
            if on_retry is not None:
                on_retry(exc)
            log_event(
                log,
                logging.WARNING,
                "ace retry",
                call=what,
                error=str(exc),
                attempt=number,
                delay_s=round(delay, 3),
            )
            await sleep(delay)
    raise AceRetriesExhausted(
        f"{what}: gave up after {policy.max_attempts} attempts; last error {last}"
    ) from last
