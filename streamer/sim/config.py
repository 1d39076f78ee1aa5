"""What a simulator serves: the data model's knobs, the serving mode and the faults, all immutable.

The model knobs (seed, sites, points, shares, interval, gaps) fix every sample the simulator can ever
serve, so ``expected()`` computed from the same ``SimConfig`` agrees with a running server. The mode
(order, repeats, empty pages) and the faults change how samples travel, never which ones exist; a
running server may switch them (``/_sim/mode``, ``/_sim/faults``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from streamer.times import to_ms

Order = Literal["grouped", "interleaved"]
WeatherShape = Literal["alternate", "object", "flat"]
ORDERS: tuple[Order, ...] = ("grouped", "interleaved")
WEATHER_SHAPES: tuple[WeatherShape, ...] = ("alternate", "object", "flat")
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Gap:
    """Samples of ``point`` (a full point name, or every point of ``site`` when None) left out of
    ``[start_ms, end_ms)``: a span the API never recorded."""

    site: str
    point: str | None
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Late:
    """Samples of ``point`` (full name, or every point of ``site`` when None) in ``[start_ms, end_ms)``
    that reach the API only once its clock passes ``end_ms + delay_s``: an edge gateway that buffered
    through a WAN outage and uploads later. Until then every timeseries answer leaves them out."""

    site: str
    point: str | None
    start_ms: int
    end_ms: int
    delay_s: int

    @property
    def arrives_ms(self) -> int:
        return self.end_ms + self.delay_s * 1000

    def spec(self) -> str:
        target = self.point or f"{self.site}/*"
        return f"{target}@{self.start_ms}..{self.end_ms}+{self.delay_s}"

    def as_gap(self) -> Gap:
        return Gap(self.site, self.point, self.start_ms, self.end_ms)


@dataclass(frozen=True)
class FaultConfig:
    """Faults injected into API responses (never into ``/_sim/`` admin calls).

    Rates are shares of requests. With ``seed`` set, a request's fate is a pure function of
    (seed, method, path, query, attempt number), so a run repeats exactly; with None it is random.
    Either way at most ``max_streak`` failures in a row hit one request, so a client that retries
    ``max_streak + 1`` times always gets the fault-free answer.
    """

    rate_5xx: float = 0.0
    rate_429: float = 0.0
    retry_after_s: int = 1
    retry_after_date_share: float = 0.5
    rate_truncate: float = 0.0
    rate_slow: float = 0.0
    slow_ms: int = 500
    unauthorized_sites: frozenset[str] = frozenset()
    transfer_limit: int | None = None
    short_points_pages: float = 0.0
    seed: int | None = 0
    max_streak: int = 2
    late: tuple[Late, ...] = ()

    def __post_init__(self) -> None:
        shares = ("rate_5xx", "rate_429", "rate_truncate", "rate_slow", "retry_after_date_share")
        for name in (*shares, "short_points_pages"):
            _check_share(name, getattr(self, name))
        if self.rate_5xx + self.rate_429 + self.rate_truncate > 1.0:
            raise ValueError("rate_5xx + rate_429 + rate_truncate must not exceed 1")
        if self.retry_after_s < 0 or self.slow_ms < 0 or self.max_streak < 0:
            raise ValueError("retry_after_s, slow_ms and max_streak must not be negative")
        if self.transfer_limit is not None and self.transfer_limit < 1:
            raise ValueError("transfer_limit must be at least 1")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unauthorized_sites"] = sorted(self.unauthorized_sites)
        data["late"] = [late.spec() for late in self.late]
        return data

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied (JSON values); unknown names raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        if "unauthorized_sites" in changes:
            changes = {**changes, "unauthorized_sites": frozenset(changes["unauthorized_sites"])}
        if "late" in changes:
            specs = changes["late"]
            if not isinstance(specs, list) or not all(isinstance(x, str) for x in specs):
                raise ValueError("late must be a list of SITE[/POINT]@START..END+DELAY specs")
            changes = {**changes, "late": tuple(parse_late(x) for x in specs)}
        return dataclasses.replace(self, **changes)

    def hidden(self, site: str, now_ms: int) -> tuple[Gap, ...]:
        """The late spans of ``site`` that have not arrived at ``now_ms``."""
        return tuple(x.as_gap() for x in self.late if x.site == site and now_ms < x.arrives_ms)


@dataclass(frozen=True)
class SimConfig:
    """Everything a simulator needs. Shares are fractions in [0, 1]."""

    seed: int = 0
    sites: tuple[str, ...] = ("site_01",)
    points: int = 4583
    extra_share: float = 0.10
    disabled_share: float = 0.05
    interval_s: int = 60
    ms_phase_share: float = 0.10
    string_share: float = 0.10
    invalid_share: float = 0.02
    null_share: float = 0.05  # configured points sending null in each nullable listing field
    gaps: tuple[Gap, ...] = ()
    order: Order = "interleaved"
    repeat: int = 3
    empty_every: int = 0
    weather_shape: WeatherShape = "alternate"
    token: SecretStr = field(default_factory=lambda: SecretStr("dev-token"))
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if not self.sites or len(set(self.sites)) != len(self.sites):
            raise ValueError("sites must be a non-empty list of distinct names")
        bad = [s for s in self.sites if not _SITE_NAME.match(s)]
        if bad:
            raise ValueError(f"invalid site name(s): {', '.join(bad)}")
        shares = ("extra_share", "disabled_share", "ms_phase_share", "string_share", "invalid_share")
        for name in (*shares, "null_share"):
            _check_share(name, getattr(self, name))
        if self.string_share + self.invalid_share > 1.0:
            raise ValueError("string_share + invalid_share must not exceed 1")
        if self.points < 1 or self.interval_s < 1:
            raise ValueError("points and interval_s must be at least 1")
        if self.repeat < 0 or self.empty_every < 0:
            raise ValueError("repeat and empty_every must not be negative")
        if self.order not in ORDERS or self.weather_shape not in WEATHER_SHAPES:
            raise ValueError("invalid order or weather_shape")
        for site in [g.site for g in self.gaps] + [x.site for x in self.faults.late]:
            if site not in self.sites:
                raise ValueError(f"gap names unknown site {site!r}")

    @property
    def interval_ms(self) -> int:
        return self.interval_s * 1000

    def gaps_of(self, site: str) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.site == site)


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (got {value})")


def parse_sites(text: str) -> tuple[str, ...]:
    """``"3"`` gives site_01..site_03; ``"a,b"`` gives those names."""
    text = text.strip()
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ValueError("the site count must be at least 1")
        return tuple(f"site_{i:02d}" for i in range(1, count + 1))  # as `streamer dev` names them
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_late(spec: str) -> Late:
    """``SITE[/POINT]@START..END+DELAY`` (POINT may be ``*``; DELAY in seconds) to a ``Late``."""
    span_spec, plus, delay_text = spec.rpartition("+")
    if not plus or not delay_text.strip().isdigit():
        raise ValueError(f"late must look like SITE[/POINT]@START..END+DELAY (got {spec!r})")
    target, at, span = span_spec.partition("@")
    if at and "/" not in target:
        target += "/*"
    try:
        gap = parse_gap(f"{target}@{span}" if at else spec)
    except ValueError:
        raise ValueError(f"late must look like SITE[/POINT]@START..END+DELAY (got {spec!r})") from None
    return Late(gap.site, gap.point, gap.start_ms, gap.end_ms, int(delay_text))


def parse_gap(spec: str) -> Gap:
    """``SITE/POINT@START..END`` (POINT the rest of a full point name, or ``*``) to a ``Gap``."""
    target, sep, span = spec.rpartition("@")
    start_text, dots, end_text = span.partition("..")
    site, slash, rest = target.partition("/")
    if not (sep and dots and slash and site and rest):
        raise ValueError(f"gap must look like SITE/POINT@START..END (got {spec!r})")
    start_ms, end_ms = to_ms(start_text), to_ms(end_text)
    if end_ms <= start_ms:
        raise ValueError(f"gap end must be after its start (got {spec!r})")
    return Gap(site=site, point=None if rest == "*" else target, start_ms=start_ms, end_ms=end_ms)
