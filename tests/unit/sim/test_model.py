"""Unit tests of the sample model: determinism, window semantics, orders, value mix, expected()."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pytest

from streamer.sim.catalog import BINARY, MULTISTATE, catalog_of
from streamer.sim.config import Gap, SimConfig
from streamer.sim.model import (
    BOOL_KIND,
    FLOAT,
    INF,
    INT,
    JUNK,
    NAN,
    NULL,
    STRING,
    expected,
    sample_at,
    window_samples,
    window_slice,
    window_total,
)
from streamer.sim.render import raw_value

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
SITE = "s1"
CONFIG = SimConfig(sites=(SITE, "s2"), points=300)


def _valid_milli(value: Any) -> int | None:
    """The brief's validity rule, applied to a raw API value: number, numeric string or bool, finite."""
    if isinstance(value, bool):
        return 1000 if value else 0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return round(number * 1000) if math.isfinite(number) else None


def _reference(config: SimConfig, site: str, start: int, end: int, disabled: set[str]) -> dict[str, Any]:
    """expected() recomputed the slow way: every sample, zlib per key, validity from the raw value."""
    cat = catalog_of(config, site)
    total = window_total(config, cat, start, end)
    samples = window_samples(config, site, start, end, "grouped", 0, total)
    everything, valid = [], []
    for j, t, k, m in zip(
        *(a.tolist() for a in (samples.j, samples.t_ms, samples.kind, samples.milli)), strict=True
    ):
        name = cat.names[j]
        crc = zlib.crc32(f"{site}/{name}@{t}".encode())
        everything.append(crc)
        milli = _valid_milli(raw_value(k, m, cat.ptype[j] == MULTISTATE))
        if cat.default_enabled[j] and name not in disabled and milli is not None:
            valid.append((crc, milli))
    return {
        "all": {"count": len(everything), "key_checksum": sum(everything)},
        "valid": {
            "count": len(valid),
            "key_checksum": sum(c for c, _ in valid),
            "value_milli_sum": sum(m for _, m in valid),
        },
    }


def test_samples_are_deterministic() -> None:
    """The same (config, site, point, k) gives the same sample, whatever object computes it."""
    cat = catalog_of(CONFIG, SITE)
    j = np.arange(cat.size, dtype=np.int64)
    k = np.full(cat.size, 28_401_120, dtype=np.int64)
    a = sample_at(CONFIG, cat, j, k)
    b = sample_at(SimConfig(sites=(SITE, "s2"), points=300), catalog_of(CONFIG, SITE), j, k)
    for field in ("t_ms", "kind", "milli", "suffix", "fraction"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    reseeded = SimConfig(sites=(SITE, "s2"), points=300, seed=1)
    other = sample_at(reseeded, catalog_of(reseeded, SITE), j, k)
    assert not np.array_equal(a.milli, other.milli)


def test_window_is_start_inclusive_end_exclusive_to_the_ms() -> None:
    """A sample at t belongs to [t, t+1) and not to [t-1, t): milliseconds decide."""
    cat = catalog_of(CONFIG, SITE)
    j = int(np.flatnonzero(cat.phase_ms % 1000 != 0)[0])
    t = T0 + int(cat.phase_ms[j])  # T0 is a whole number of intervals
    ties = int((cat.phase_ms == cat.phase_ms[j]).sum())
    assert expected(CONFIG, SITE, t, t + 1)["all"]["count"] == ties
    assert expected(CONFIG, SITE, t - 1, t)["all"]["count"] == int(
        (cat.phase_ms == cat.phase_ms[j] - 1).sum()
    )
    assert expected(CONFIG, SITE, t + 1, t + 2)["all"]["count"] == int(
        (cat.phase_ms == cat.phase_ms[j] + 1).sum()
    )
    for order in ("grouped", "interleaved"):
        js, ks = window_slice(CONFIG, cat, t, t + 1, order, 0, 10)
        assert j in js.tolist()
        assert set((cat.phase_ms[js] + ks * CONFIG.interval_ms).tolist()) == {t}


def test_window_counts_one_sample_per_point_per_interval() -> None:
    """A window of whole intervals holds exactly one sample per point per interval."""
    cat = catalog_of(CONFIG, SITE)
    assert window_total(CONFIG, cat, T0, T0 + HOUR) == cat.size * 60
    assert window_total(CONFIG, cat, T0 + 17, T0 + 17 + HOUR) == cat.size * 60
    assert window_total(CONFIG, cat, T0, T0) == 0
    assert window_total(CONFIG, cat, T0 + HOUR, T0) == 0


@pytest.mark.parametrize(("start", "end"), [(T0, T0 + HOUR), (T0 + 12_345, T0 + 2 * HOUR - 777)])
def test_orders_hold_the_same_samples(start: int, end: int) -> None:
    """grouped and interleaved enumerate the same (point, time) set, each in its own order."""
    cat = catalog_of(CONFIG, SITE)
    total = window_total(CONFIG, cat, start, end)
    jg, kg = window_slice(CONFIG, cat, start, end, "grouped", 0, total)
    ji, ki = window_slice(CONFIG, cat, start, end, "interleaved", 0, total)
    tg = cat.phase_ms[jg] + kg * CONFIG.interval_ms
    ti = cat.phase_ms[ji] + ki * CONFIG.interval_ms
    assert len(jg) == len(ji) == total
    assert set(zip(jg.tolist(), tg.tolist(), strict=True)) == set(zip(ji.tolist(), ti.tolist(), strict=True))
    assert int(tg.min()) >= start and int(tg.max()) < end
    assert bool(np.all(np.diff(jg) >= 0)), "grouped keeps each point's samples together"
    assert bool(np.all(np.diff(ti) >= 0)), "interleaved runs by time across points"
    assert bool(np.all(np.diff(tg)[np.diff(jg) == 0] > 0)), "a point's samples run forward in time"


def test_slices_concatenate_to_the_whole_order() -> None:
    """Consecutive slices of an order join up to the full order, for any slice size."""
    cat = catalog_of(CONFIG, SITE)
    start, end = T0 + 5_000, T0 + HOUR
    total = window_total(CONFIG, cat, start, end)
    for order in ("grouped", "interleaved"):
        whole_j, whole_k = window_slice(CONFIG, cat, start, end, order, 0, total)
        parts = [window_slice(CONFIG, cat, start, end, order, o, 997) for o in range(0, total + 997, 997)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), whole_j)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), whole_k)


def test_value_mix_matches_the_shares() -> None:
    """Kinds follow the configured shares; binary points send booleans, multistate ints."""
    cat = catalog_of(CONFIG, SITE)
    total = window_total(CONFIG, cat, T0, T0 + 6 * HOUR)
    s = window_samples(CONFIG, SITE, T0, T0 + 6 * HOUR, "grouped", 0, total)
    share = {kind: float(np.mean(s.kind == kind)) for kind in range(8)}
    for bad in (NULL, NAN, INF, JUNK):
        assert abs(share[bad] - 0.005) < 0.0015, (bad, share[bad])
    not_binary = cat.ptype[s.j] != BINARY
    assert abs(float(np.mean(s.kind[not_binary] == STRING)) - 0.10) < 0.01
    assert set(np.unique(s.kind[cat.ptype[s.j] == BINARY]).tolist()) == {BOOL_KIND, NULL, NAN, INF, JUNK}
    assert set(np.unique(s.kind[cat.ptype[s.j] == MULTISTATE]).tolist()) == {
        INT,
        STRING,
        NULL,
        NAN,
        INF,
        JUNK,
    }
    assert share[FLOAT] > 0.6
    assert set(np.unique(s.milli[s.kind == BOOL_KIND]).tolist()) == {0, 1000}


def test_times_with_milliseconds_always_show_them() -> None:
    """Fraction-less time formats are only used for whole-second times; all forms occur."""
    cat = catalog_of(CONFIG, SITE)
    total = window_total(CONFIG, cat, T0, T0 + HOUR)
    s = window_samples(CONFIG, SITE, T0, T0 + HOUR, "interleaved", 0, total)
    assert not bool(np.any((s.fraction == 0) & (s.t_ms % 1000 != 0)))
    assert set(np.unique(s.fraction).tolist()) == {0, 3, 6}
    assert set(np.unique(s.suffix).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(("start", "end"), [(T0, T0 + 3 * HOUR), (T0 + 1_234, T0 + HOUR + 999)])
def test_expected_equals_a_per_sample_reference(start: int, end: int) -> None:
    """expected() equals counts and zlib checksums recomputed sample by sample from raw values."""
    config = SimConfig(sites=(SITE,), points=120, gaps=(Gap(SITE, None, T0 + 600_000, T0 + 900_000),))
    got = expected(config, SITE, start, end)
    want = _reference(config, SITE, start, end, set())
    assert got["all"] == want["all"]
    assert got["valid"] == want["valid"]
    assert got["valid"]["count"] < got["all"]["count"]


def test_expected_honours_gaps_exactly() -> None:
    """A point gap removes that point's samples in the span; a site gap removes every point's."""
    cat = catalog_of(CONFIG, SITE)
    point = cat.names[5]
    base = expected(CONFIG, SITE, T0, T0 + HOUR)["all"]["count"]
    one = SimConfig(sites=(SITE, "s2"), points=300, gaps=(Gap(SITE, point, T0, T0 + 600_000),))
    assert expected(one, SITE, T0, T0 + HOUR)["all"]["count"] == base - 10
    everything = SimConfig(sites=(SITE, "s2"), points=300, gaps=(Gap(SITE, None, T0, T0 + 600_000),))
    assert expected(everything, SITE, T0, T0 + HOUR)["all"]["count"] == base - 10 * cat.size
    other_site = window_total(CONFIG, catalog_of(CONFIG, "s2"), T0, T0 + HOUR)
    assert expected(everything, "s2", T0, T0 + HOUR)["all"]["count"] == other_site


def test_expected_overrides_change_valid_only() -> None:
    """Disabling a point at runtime removes its valid samples from "valid" and nothing from "all"."""
    cat = catalog_of(CONFIG, SITE)
    point = next(n for j, n in enumerate(cat.names) if cat.default_enabled[j] and cat.ptype[j] != BINARY)
    before = expected(CONFIG, SITE, T0, T0 + HOUR)
    after = expected(CONFIG, SITE, T0, T0 + HOUR, {point: False})
    want = _reference(CONFIG, SITE, T0, T0 + HOUR, {point})
    assert after["all"] == before["all"]
    assert after["valid"] == want["valid"]
    assert 50 <= before["valid"]["count"] - after["valid"]["count"] <= 60


def test_expected_refuses_unknown_site() -> None:
    """expected() for a site the config does not have is a ValueError."""
    with pytest.raises(ValueError, match="unknown site"):
        expected(CONFIG, "nope", T0, T0 + HOUR)
