"""Which requests fail, and how. Decisions are pure given (seed, request, attempt); state is the count.

A request is identified by method, path and query without ``page_size`` (a client shrinking its page
is retrying the same request); its attempt number counts how often it came before. With a seed the
fate of attempt ``n`` of a request never changes, so a whole run repeats exactly; without one it is
drawn at random. A request never fails more than ``max_streak`` times in a row, whichever mode, so a
client retrying enough always ends with the fault-free answer. A short listing page (a points page
with fewer items than its envelope says) is drawn apart from the other faults, for listings only.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from enum import StrEnum

from streamer.sim.config import FaultConfig

_SERVER_ERRORS = (500, 502, 503, 504)
_MAX_TRACKED = 200_000  # request keys remembered; a long demo run must not grow without bound


class FaultKind(StrEnum):
    SERVER_ERROR = "5xx"
    RATE_LIMITED = "429"
    TRUNCATED = "truncated"
    TRANSFER_LIMIT = "transfer_limit"
    SLOW = "slow"
    UNAUTHORIZED = "401_site"
    SHORT_PAGE = "short_points_page"


@dataclass(frozen=True)
class Fate:
    """What happens to one request: at most one failure, optionally delayed first."""

    failure: FaultKind | None = None
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0


def _uniforms(seed: int, key: str, attempt: int) -> tuple[float, float, float]:
    digest = hashlib.blake2b(f"{seed}\x1f{attempt}\x1f{key}".encode(), digest_size=12).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") / 2**32 for i in (0, 4, 8))  # type: ignore[return-value]


class FaultInjector:
    """Holds the fault settings (switchable at runtime), per-request attempts, and counts of each fault."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self._attempts: dict[str, int] = {}
        self._streaks: dict[str, int] = {}
        self._random = random.Random()

    def reset(self, config: FaultConfig | None = None) -> None:
        """New settings (or the same) with attempts, streaks and counts forgotten."""
        self.config = config or self.config
        self.counts.clear()
        self._attempts.clear()
        self._streaks.clear()

    def decide(self, key: str, *, page_size: int | None = None, listing: bool = False) -> Fate:
        """The fate of this attempt of request ``key`` (method, path and query); ``listing``: a
        configured-points page, which may come back short."""
        cfg = self.config
        if len(self._attempts) > _MAX_TRACKED:
            self._attempts.clear()
            self._streaks.clear()
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        self.counts["requests"] += 1
        if cfg.seed is None:
            u_fail, u_slow, u_detail, u_short = (self._random.random() for _ in range(4))
        else:
            u_fail, u_slow, u_detail = _uniforms(cfg.seed, key, attempt)
            u_short = _uniforms(cfg.seed, f"short\x1f{key}", attempt)[0]
        delay = cfg.slow_ms / 1000 if u_slow < cfg.rate_slow else 0.0
        if delay:
            self.counts[FaultKind.SLOW.value] += 1
        failure = self._failure(key, u_fail, page_size, u_short if listing else 1.0)
        if failure is None:
            return Fate(delay_s=delay)
        self.counts[failure.value] += 1
        if failure is FaultKind.SERVER_ERROR:
            return Fate(failure, _SERVER_ERRORS[int(u_detail * 4)], delay_s=delay)
        if failure is FaultKind.RATE_LIMITED:
            return Fate(failure, 429, retry_after=self._retry_after(u_detail), delay_s=delay)
        return Fate(failure, 200, delay_s=delay)

    def _failure(self, key: str, u: float, page_size: int | None, u_short: float) -> FaultKind | None:
        cfg = self.config
        limit = cfg.transfer_limit
        streak = self._streaks.get(key, 0)
        if limit is not None and page_size is not None and page_size > limit:
            self._streaks[key] = streak + 1  # counts, so the shrunk retry is not failed again at random
            return FaultKind.TRANSFER_LIMIT  # every time: only a smaller page gets through
        failure: FaultKind | None = None
        if streak < cfg.max_streak:
            if u < cfg.rate_5xx:
                failure = FaultKind.SERVER_ERROR
            elif u < cfg.rate_5xx + cfg.rate_429:
                failure = FaultKind.RATE_LIMITED
            elif u < cfg.rate_5xx + cfg.rate_429 + cfg.rate_truncate:
                failure = FaultKind.TRUNCATED
            elif u_short < cfg.short_points_pages:
                failure = FaultKind.SHORT_PAGE
        self._streaks[key] = streak + 1 if failure else 0
        return failure

    def _retry_after(self, u: float) -> str:
        seconds = self.config.retry_after_s
        if u >= self.config.retry_after_date_share:
            return str(seconds)
        # An HTTP date has whole seconds: round up so the client never comes back early.
        return formatdate(int(time.time()) + seconds + 1, usegmt=True)
