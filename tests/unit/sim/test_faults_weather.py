"""Unit tests of fault decisions and of the simulated weather."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from streamer.sim.config import FaultConfig, SimConfig
from streamer.sim.faults import FaultInjector, FaultKind
from streamer.sim.weather import BUCKET_MS, FIELDS, weather_body, weather_shape

T0 = 1_704_067_200_000


def _fates(config: FaultConfig, keys: int, attempts: int = 1) -> list[FaultKind | None]:
    injector = FaultInjector(config)
    return [injector.decide(f"GET /x?{i}").failure for i in range(keys) for _ in range(attempts)]


def test_seeded_faults_repeat_exactly() -> None:
    """With a seed, the same requests meet the same faults on every run."""
    config = FaultConfig(rate_5xx=0.2, rate_429=0.1, rate_truncate=0.05, seed=11)
    assert _fates(config, 500, 2) == _fates(config, 500, 2)
    assert _fates(config, 500) != _fates(
        FaultConfig(rate_5xx=0.2, rate_429=0.1, rate_truncate=0.05, seed=12), 500
    )


def test_fault_rates_follow_the_config() -> None:
    """First attempts fail at the configured shares, seeded or random."""
    for seed in (5, None):
        fates = _fates(FaultConfig(rate_5xx=0.2, rate_429=0.1, rate_truncate=0.05, seed=seed), 4000)
        share = {kind: fates.count(kind) / len(fates) for kind in FaultKind}
        assert abs(share[FaultKind.SERVER_ERROR] - 0.2) < 0.025
        assert abs(share[FaultKind.RATE_LIMITED] - 0.1) < 0.02
        assert abs(share[FaultKind.TRUNCATED] - 0.05) < 0.015


def test_streak_cap_lets_a_retrying_client_through() -> None:
    """Even at a 100 % failure rate, attempt max_streak + 1 of a request succeeds."""
    injector = FaultInjector(FaultConfig(rate_5xx=1.0, max_streak=2, seed=None))
    fates = [injector.decide("GET /same").failure for _ in range(6)]
    assert fates == [FaultKind.SERVER_ERROR, FaultKind.SERVER_ERROR, None] * 2
    assert injector.counts["5xx"] == 4 and injector.counts["requests"] == 6


def test_transfer_limit_fails_every_big_page() -> None:
    """Pages above the transfer limit always fail; smaller ones never do."""
    injector = FaultInjector(FaultConfig(transfer_limit=1000))
    assert {injector.decide("GET /big", page_size=5000).failure for _ in range(5)} == {
        FaultKind.TRANSFER_LIMIT
    }
    assert injector.decide("GET /small", page_size=1000).failure is None


def test_shrunk_retry_after_transfer_failures_gets_through() -> None:
    """Transfer-limit failures count toward the streak: the shrunk retry is not failed at random."""
    injector = FaultInjector(FaultConfig(rate_5xx=1.0, max_streak=2, transfer_limit=1000, seed=None))
    fates = [injector.decide("GET /w", page_size=size).failure for size in (4000, 2000, 1000)]
    assert fates == [FaultKind.TRANSFER_LIMIT, FaultKind.TRANSFER_LIMIT, None]


def test_retry_after_in_seconds_and_as_http_date() -> None:
    """429s say Retry-After in seconds or as an HTTP date at least that far ahead."""
    injector = FaultInjector(FaultConfig(rate_429=1.0, retry_after_s=3, max_streak=100, seed=2))
    values = {injector.decide(f"GET /r{i}").retry_after for i in range(200)}
    assert "3" in values
    dates = [v for v in values if v and v != "3"]
    assert dates, "some 429s give an HTTP date"
    assert all(parsedate_to_datetime(d).tzinfo is not None for d in dates)


def test_slow_responses_are_counted_and_delayed() -> None:
    """A slow fate carries the configured delay and is counted; it is not a failure."""
    injector = FaultInjector(FaultConfig(rate_slow=1.0, slow_ms=250))
    fate = injector.decide("GET /slow")
    assert fate.failure is None and fate.delay_s == 0.25
    assert injector.counts["slow"] == 1


def test_weather_shapes_alternate_by_site() -> None:
    """Sites take the object, flat-with-time and flat-with-dt shapes in turn."""
    config = SimConfig(sites=("a", "b", "c"))
    assert [weather_shape(config, s) for s in ("a", "b", "c")] == ["object", "flat_time", "flat_dt"]
    obj = weather_body(config, "a", T0)
    assert set(obj) == set(FIELDS)
    assert obj["temp"]["units"] == "degF" and obj["temp"]["time"] == "2024-01-01T00:00:00.000Z"
    flat_time, flat_dt = weather_body(config, "b", T0), weather_body(config, "c", T0)
    assert flat_time["time"] == "2024-01-01T00:00:00.000Z" and isinstance(flat_time["temp"], float)
    assert flat_dt["dt"] == T0 // 1000 and "time" not in flat_dt


def test_weather_is_fixed_within_a_bucket() -> None:
    """Weather is the same within a 5-minute bucket and changes with the next one."""
    config = SimConfig(sites=("a",), weather_shape="object")
    assert weather_body(config, "a", T0 + 1) == weather_body(config, "a", T0 + BUCKET_MS - 1)
    assert weather_body(config, "a", T0) != weather_body(config, "a", T0 + BUCKET_MS)
