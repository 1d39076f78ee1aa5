"""Unit tests of the simulated point catalog and the vectorised key checksum."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from streamer.sim.catalog import BINARY, MULTISTATE, catalog_of
from streamer.sim.checksum import key_checksum_sum, key_checksums, prefix_lin
from streamer.sim.config import SimConfig

CONFIG = SimConfig(sites=("site_01", "site_02"), points=1000)


def test_catalog_counts_are_exact() -> None:
    """M configured points, round(M * extra_share) extra, round(M * disabled_share) disabled."""
    cat = catalog_of(CONFIG, "site_01")
    assert cat.size == 1100
    assert int(cat.configured.sum()) == 1000
    assert int((cat.configured & ~cat.default_enabled).sum()) == 50
    assert int((cat.phase_ms % 1000 != 0).sum()) == 110  # ms_phase_share of all points
    assert len(set(cat.names)) == cat.size
    assert all(name.startswith("site_01/") for name in cat.names)


def test_catalog_is_deterministic_per_seed() -> None:
    """Same seed, same catalog; another seed picks other extra points and phases."""
    a = catalog_of(CONFIG, "site_01")
    b = catalog_of(SimConfig(sites=("site_01", "site_02"), points=1000), "site_01")
    other = catalog_of(SimConfig(sites=("site_01", "site_02"), points=1000, seed=7), "site_01")
    assert a.names == b.names
    assert np.array_equal(a.phase_ms, b.phase_ms)
    assert np.array_equal(a.configured, b.configured)
    assert not np.array_equal(a.configured, other.configured)
    assert not np.array_equal(a.phase_ms, other.phase_ms)


def test_catalog_items_look_like_the_api() -> None:
    """Items carry site, tags, unit, point_type and bacnet_data; all equipment kinds appear."""
    cat = catalog_of(CONFIG, "site_01")
    first = cat.items[0]
    assert first["name"] == "site_01/ahu_1/supply_air_temp"
    assert first["kv_tags"] == {"unit": "degF"}
    assert first["collect_interval"] == 60
    assert first["bacnet_data"]["device_name"] == "AHU-1"
    kinds = {name.split("/")[1].rsplit("_", 1)[0] for name in cat.names}
    assert kinds == {"ahu", "vav", "fcu", "chiller", "boiler", "pump", "cooling_tower", "meter"}
    assert {BINARY, MULTISTATE} <= set(cat.ptype.tolist())


def test_phases_stay_inside_the_interval() -> None:
    """Every phase is in [0, interval), so each interval cycle holds one sample per point."""
    cat = catalog_of(CONFIG, "site_02")
    assert int(cat.phase_ms.min()) >= 0
    assert int(cat.phase_ms.max()) < CONFIG.interval_ms
    assert np.array_equal(np.sort(cat.phase_ms), cat.phase_sorted)


def test_key_checksums_equal_zlib() -> None:
    """The vectorised CRC-32 of f"{site}/{point}@{ts_ms}" equals zlib's for every sample."""
    rng = np.random.default_rng(3)
    prefixes = [f"s/s/p_{i}/x{'y' * i}@".encode() for i in range(20)]
    lin = prefix_lin(prefixes)
    which = rng.integers(0, 20, 5000)
    ts = rng.integers(10**12, 10**13, 5000)
    got = key_checksums(lin[which], ts)
    want = [
        zlib.crc32(prefixes[w] + str(t).encode()) for w, t in zip(which.tolist(), ts.tolist(), strict=True)
    ]
    assert got.tolist() == want
    assert key_checksum_sum(lin[which], ts) == sum(want)


def test_key_checksums_refuse_other_digit_counts() -> None:
    """Times outside 13-digit epoch ms (2001..2286) are refused, not silently wrong."""
    lin = prefix_lin([b"a@"])
    with pytest.raises(ValueError, match="2001"):
        key_checksums(lin, np.array([999_999_999_999], dtype=np.int64))
