"""Unit tests of the vendor's shape of listed points and sites: deterministic, exact null counts, and
nulls in collect_enabled only where they mean what the point is (collected)."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.sim.catalog import catalog_of
from streamer.sim.config import SimConfig
from streamer.sim.keyed import rank_mask
from streamer.sim.vendor import NULLABLE, collect_enabled_value, site_item

CONFIG = SimConfig(sites=("site_01", "site_02"), points=1000, null_share=0.04)


def _configured_items(config: SimConfig, site: str) -> list[dict[str, object]]:
    cat = catalog_of(config, site)
    return [cat.items[j] for j in range(cat.size) if cat.configured[j]]


def test_null_counts_are_exact_per_field() -> None:
    """round(M * null_share) configured points send null in each nullable field; share 0 sends none."""
    items = _configured_items(CONFIG, "site_01")
    assert {f: sum(item[f] is None for item in items) for f in NULLABLE} == dict.fromkeys(NULLABLE, 40)
    clean = _configured_items(SimConfig(sites=("site_01",), points=1000, null_share=0.0), "site_01")
    assert not any(item[f] is None for item in clean for f in NULLABLE)


def test_null_collect_enabled_only_on_collected_points() -> None:
    """The null collect_enabled share is chosen among the points collected by default, exactly."""
    cat = catalog_of(CONFIG, "site_02")
    assert int(cat.null_enabled.sum()) == 40
    assert not (cat.null_enabled & ~cat.default_enabled).any()


def test_fields_pick_different_points() -> None:
    """Each field has its own choice of null points (not all nulls on the same few points)."""
    items = _configured_items(CONFIG, "site_01")
    chosen = {f: frozenset(i for i, item in enumerate(items) if item[f] is None) for f in NULLABLE}
    assert len(set(chosen.values())) == len(NULLABLE)


def test_items_are_deterministic_per_seed() -> None:
    """Same config, same items; another seed, other ids, device UUIDs, times and null choices."""
    a = _configured_items(CONFIG, "site_01")
    b = _configured_items(SimConfig(sites=("site_01", "site_02"), points=1000, null_share=0.04), "site_01")
    other = _configured_items(
        SimConfig(sites=("site_01", "site_02"), points=1000, null_share=0.04, seed=3), "site_01"
    )
    assert a == b
    assert [i["id"] for i in a] != [i["id"] for i in other]
    assert {i["device_id"] for i in a} != {i["device_id"] for i in other}
    assert [i["created"] for i in a] != [i["created"] for i in other]


def test_ids_times_and_devices_are_consistent() -> None:
    """Ids unique; site_id/client_id those of the site listing; updated never before created; points on
    one BACnet device share its device UUID."""
    items = _configured_items(CONFIG, "site_01")
    site = site_item(CONFIG.seed, "site_01", 0)
    assert len({i["id"] for i in items}) == len(items)
    assert {(i["site_id"], i["client_id"], i["client"]) for i in items} == {
        (site["id"], site["client_id"], site["client"])
    }
    assert all(i["updated"] is None or i["updated"] >= i["created"] for i in items)
    uuids: dict[object, set[object]] = {}
    for item in items:
        bacnet, device = item["bacnet_data"], item["device_id"]
        if isinstance(bacnet, dict) and device is not None:
            uuids.setdefault(bacnet["device_id"], set()).add(device)
    assert uuids and all(len(v) == 1 for v in uuids.values())


@pytest.mark.parametrize(
    ("enabled", "null", "served"), [(True, True, None), (True, False, True), (False, True, False)]
)
def test_collect_enabled_value(enabled: bool, null: bool, served: bool | None) -> None:
    """Null only on a collected point; a point switched off says false even where the catalog has null."""
    assert collect_enabled_value(enabled, null) is served


def test_sites_say_archived_null_at_odd_positions() -> None:
    """archived is false at even positions and null (not archived) at odd ones."""
    assert [site_item(0, s, i)["archived"] for i, s in enumerate(("a1", "b1", "c1"))] == [False, None, False]


def test_rank_mask_is_exact_and_stable() -> None:
    """The count smallest eligible hashes, ties by position; never more than are eligible."""
    eligible = np.array([True, False, True, True, True])
    assert rank_mask([5, 0, 5, 1, 9], 2, eligible).tolist() == [True, False, False, True, False]
    assert int(rank_mask([1, 2, 3, 4, 5], 10, eligible).sum()) == 4


def test_null_share_is_validated() -> None:
    """A null_share outside [0, 1] is refused at construction."""
    with pytest.raises(ValueError, match="null_share"):
        SimConfig(null_share=1.5)
