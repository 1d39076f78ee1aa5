"""Unit tests of the late-arrival fault: its spec, what pages hold before and after arrival, expected()."""

from __future__ import annotations

import orjson
import pytest

from streamer.sim.catalog import catalog_of
from streamer.sim.config import FaultConfig, Gap, Late, SimConfig, parse_late
from streamer.sim.model import expected
from streamer.sim.pages import Cursor, decode_cursor
from streamer.sim.server import SimState

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000


def test_late_specs_parse_iso_epoch_star_and_a_whole_site() -> None:
    """SITE[/POINT]@START..END+DELAY in ISO 8601 or epoch ms; no point or * means every point."""
    iso = parse_late("s1/*@2024-01-01T01:00:00Z..2024-01-01T03:00:00+00:00+10800")
    assert iso == Late("s1", None, T0 + HOUR, T0 + 3 * HOUR, 10800)
    assert parse_late(f"s1@{T0}..{T0 + HOUR}+5") == Late("s1", None, T0, T0 + HOUR, 5)
    assert parse_late(f"s1/ahu_1/sat@{T0}..{T0 + HOUR}+0").point == "s1/ahu_1/sat"
    assert iso.arrives_ms == T0 + 6 * HOUR
    assert parse_late(iso.spec()) == iso
    for bad in ("s1@1..2", f"s1@{T0}..{T0}+5", "s1+5", f"s1@{T0}..{T0 + 1}+x", f"@{T0}..{T0 + 1}+1"):
        with pytest.raises(ValueError, match="SITE"):
            parse_late(bad)


def test_late_switches_at_runtime_through_json_and_names_known_sites() -> None:
    """FaultConfig.updated takes spec strings, to_json gives them back; an unknown site is refused."""
    config = FaultConfig().updated({"late": [f"s1/*@{T0}..{T0 + HOUR}+60"]})
    assert config.late == (Late("s1", None, T0, T0 + HOUR, 60),)
    assert config.to_json()["late"] == [f"s1/*@{T0}..{T0 + HOUR}+60"]
    assert config.hidden("s1", T0 + HOUR + 59_999) == (Gap("s1", None, T0, T0 + HOUR),)
    assert config.hidden("s1", T0 + HOUR + 60_000) == ()
    assert config.hidden("s2", T0) == ()
    with pytest.raises(ValueError, match="late must be a list"):
        FaultConfig().updated({"late": "s1@1..2+3"})
    with pytest.raises(ValueError, match="unknown site"):
        SimConfig(sites=("s1",), points=10, faults=config.updated({"late": [f"zz@{T0}..{T0 + 1}+1"]}))


def _walk(state: SimState, site: str, start: int, end: int) -> set[tuple[str, str]]:
    """Every distinct (point, time) of a window walk, straight from the server state."""
    seen: set[tuple[str, str]] = set()
    cursor: Cursor | None = Cursor(site, start, end, state.mode.order)
    while cursor is not None:
        body = orjson.loads(bytes(state.page(cursor, 700)))
        seen |= {(s["name"], s["time"]) for s in body["point_samples"]}
        nxt = body.get("next_cursor")
        cursor = decode_cursor(nxt) if nxt and body["has_more"] else None
    return seen


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
def test_late_samples_are_absent_until_the_clock_passes_their_arrival(order: str) -> None:
    """Before END+DELAY every answer leaves the span out (as expected(hidden=...) says), then holds it."""
    late = Late("s1", None, T0 + 20 * 60_000, T0 + 40 * 60_000, 3600)
    faults = FaultConfig(late=(late,))
    config = SimConfig(sites=("s1",), points=40, order=order, faults=faults)  # type: ignore[arg-type]
    state = SimState(config)
    state.fixed_now_ms = late.arrives_ms - 1
    before = _walk(state, "s1", T0, T0 + HOUR)
    state.fixed_now_ms = late.arrives_ms
    after = _walk(state, "s1", T0, T0 + HOUR)
    final = expected(config, "s1", T0, T0 + HOUR)
    visible = expected(config, "s1", T0, T0 + HOUR, hidden=(late.as_gap(),))
    assert len(after) == final["all"]["count"]
    assert len(before) == visible["all"]["count"]
    # One sample a minute per point with samples (configured or not): 20 minutes hidden.
    assert final["all"]["count"] - visible["all"]["count"] == 20 * catalog_of(config, "s1").size
    assert before < after


def test_a_late_point_hides_only_that_point() -> None:
    """A late span of one point leaves every other point's samples where they were."""
    config = SimConfig(sites=("s1",), points=40)
    point = catalog_of(config, "s1").configured_names()[2]
    gap = Late("s1", point, T0, T0 + HOUR, 60).as_gap()
    hidden = expected(config, "s1", T0, T0 + HOUR, hidden=(gap,))
    assert expected(config, "s1", T0, T0 + HOUR)["all"]["count"] - hidden["all"]["count"] == 60


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
def test_live_serves_only_samples_whose_time_has_come(order: str) -> None:
    """Live: a window reaching past the clock holds its samples up to now only; as the clock moves on,
    the rest appear, and once it passes the end the walk equals the whole window."""
    config = SimConfig(sites=("s1",), points=40, order=order)  # type: ignore[arg-type]
    state = SimState(config)
    state.live = True
    end = T0 + 30 * 60_000
    seen: list[set[tuple[str, str]]] = []
    for now in (T0 + 10 * 60_000, T0 + 20 * 60_000 + 1, end):
        state.fixed_now_ms = now
        seen.append(_walk(state, "s1", T0, end))
        assert len(seen[-1]) == expected(config, "s1", T0, now + 1)["all"]["count"]
    assert seen[0] < seen[1] < seen[2]
    assert len(seen[2]) == expected(config, "s1", T0, end)["all"]["count"]
    state.live = False
    state.fixed_now_ms = T0
    assert _walk(state, "s1", T0, end) == seen[2]  # not live: the future is served too
