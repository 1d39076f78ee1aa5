"""Unit tests of the simulator's configuration parsing and validation."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streamer.sim.config import FaultConfig, Gap, SimConfig, parse_gap, parse_sites
from streamer.times import ms_to_iso, to_ms

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def test_parse_sites_count_and_names() -> None:
    """A number gives site_01..site_NN; a comma list gives those names."""
    assert parse_sites("3") == ("site_01", "site_02", "site_03")
    assert parse_sites("120")[-1] == "site_120"
    assert parse_sites(" a, b ,c") == ("a", "b", "c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", T0),
        ("2024-01-01T02:00:00.250+02:00", T0 + 250),
        ("2024-01-01T00:00:00.250999", T0 + 250),
        ("2023-12-31T19:00:01-05:00", T0 + 1000),
        (str(T0 + 7), T0 + 7),
    ],
)
def test_parse_time_ms_forms(text: str, expected: int) -> None:
    """ISO 8601 with Z, offsets or no zone (UTC), and epoch ms all give epoch milliseconds."""
    assert to_ms(text) == expected


def test_parse_time_ms_rejects_junk() -> None:
    """Text that is neither ISO 8601 nor an integer is a ValueError."""
    with pytest.raises(ValueError, match="not an ISO 8601"):
        to_ms("yesterday")


def test_format_time_ms_round_trips() -> None:
    """ms_to_iso writes milliseconds and Z, and parses back to the same instant."""
    assert ms_to_iso(T0 + 250) == "2024-01-01T00:00:00.250Z"
    assert to_ms(ms_to_iso(T0 + 86_399_999)) == T0 + 86_399_999


def test_parse_gap_point_and_site_wide() -> None:
    """A gap names one full point name, or * for every point of the site."""
    gap = parse_gap("s1/ahu_1/supply_air_temp@2024-01-01T00:00:00Z..2024-01-01T01:00:00Z")
    assert gap == Gap("s1", "s1/ahu_1/supply_air_temp", T0, T0 + 3_600_000)
    assert parse_gap(f"s1/*@{T0}..{T0 + 5}") == Gap("s1", None, T0, T0 + 5)


@pytest.mark.parametrize("spec", ["s1@1..2", "s1/p@2..1", "s1/p@1", "s1/p"])
def test_parse_gap_rejects_malformed(spec: str) -> None:
    """A gap without a point, a span, or with its end before its start is refused."""
    with pytest.raises(ValueError, match="gap"):
        parse_gap(spec)


def test_sim_config_validation() -> None:
    """Bad shares, duplicate sites, and gaps on unknown sites are refused at construction."""
    with pytest.raises(ValueError, match="extra_share"):
        SimConfig(extra_share=1.5)
    with pytest.raises(ValueError, match="distinct"):
        SimConfig(sites=("a", "a"))
    with pytest.raises(ValueError, match="unknown site"):
        SimConfig(sites=("a",), gaps=(Gap("b", None, 0, 1),))
    with pytest.raises(ValueError, match="site name"):
        SimConfig(sites=("a/b",))


def test_sim_config_hides_token() -> None:
    """The token never shows in the config's repr."""
    config = SimConfig(token=SecretStr("s3cret-token"))
    assert "s3cret-token" not in repr(config)


def test_fault_config_updated_from_json() -> None:
    """updated() applies JSON changes (lists become sets) and refuses unknown names and bad rates."""
    faults = FaultConfig().updated({"rate_5xx": 0.2, "unauthorized_sites": ["b", "a"]})
    assert faults.rate_5xx == 0.2
    assert faults.unauthorized_sites == frozenset({"a", "b"})
    assert faults.to_json()["unauthorized_sites"] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown fault settings: bogus"):
        faults.updated({"bogus": 1})
    with pytest.raises(ValueError, match="must not exceed 1"):
        faults.updated({"rate_429": 0.9})
