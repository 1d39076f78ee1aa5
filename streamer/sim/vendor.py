"""The vendor's shape of what the simulator lists (``aceiot-models`` 0.3.8: ``PointResponse``, ``Site``).

Items carry what the vendor's models define: ``id``, ``site_id``, ``client_id``, ``created``,
``updated``, ``collect_config``, ``topic_id``, ``device_id``, BACnet addressing; and, on a share of the
points, a null wherever the vendor's model allows one. Everything is a pure function of (seed, site,
point): ids and times come from keyed hashes, and which points send a null in which field is a rank
choice per field, so counts are exact.

What a null means is the client's reading (README, *Notes on the API*): null ``collect_enabled`` is
collected, so nulls go only on points collected by default and ``expected()`` needs no change.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from streamer.sim.keyed import U64, hash64, rank_mask, salted
from streamer.times import ms_to_iso

BOOLS = npt.NDArray[np.bool_]
# Fields of a point item that the vendor's PointResponse allows to be null (collect_enabled apart).
NULLABLE = (
    "marker_tags",
    "kv_tags",
    "bacnet_data",
    "collect_config",
    "point_type",
    "collect_interval",
    "topic_id",
    "device_id",
    "updated",
)
_CREATED_FROM_S = 1_672_531_200  # 2023-01-01T00:00:00Z
_YEAR_S = 365 * 86_400
_IDS_PER_SITE = 10_000_000


def client_of(site: str) -> str:
    """The client (customer) a site belongs to: its name's first part, as ACE names them."""
    return site.split("_")[0]


@lru_cache(maxsize=256)
def site_id(seed: int, site: str) -> int:
    return 1 + hash64(seed, "site_id", site) % 100_000


@lru_cache(maxsize=256)
def client_id(seed: int, site: str) -> int:
    return 1 + hash64(seed, "client_id", client_of(site)) % 10_000


def _iso(seconds: int) -> str:
    return ms_to_iso(seconds * 1000, digits=0)


def _stamps(h: int) -> tuple[str, str]:
    """(created, updated) in 2023-2024, ISO 8601 with ``Z``; updated never before created."""
    created = _CREATED_FROM_S + h % _YEAR_S
    updated = created + (h >> 32) % (_YEAR_S // 2)
    return _iso(created), _iso(updated)


def _device_uuid(seed: int, site: str, device: int) -> str:
    high, low = hash64(seed, "device", site, device), hash64(seed, "device-low", site, device)
    return str(uuid.UUID(int=(high << 64) | low, version=4))


def dress_points(
    seed: int, site: str, items: list[dict[str, Any]], keys: U64, configured: BOOLS, enabled: BOOLS,
    null_share: float, interval_s: int,
) -> tuple[tuple[dict[str, Any], ...], BOOLS]:  # fmt: skip
    """Catalog items (name, tags, type, BACnet object; ``keys`` their hashes) as the vendor's
    ``PointResponse`` lists them, and the points whose ``collect_enabled`` is null.

    Per nullable field, ``null_share`` of the configured points send it null; a null
    ``collect_enabled`` goes only on points collected by default (a null is collected).
    """
    count = round(int(configured.sum()) * null_share)
    nulls = {f: rank_mask(salted(keys, f"null/{f}"), count, configured).tolist() for f in NULLABLE}
    null_enabled = rank_mask(salted(keys, "null/collect_enabled"), count, enabled)
    stamps = salted(keys, "stamps").tolist()
    ids = site_id(seed, site), client_id(seed, site)
    devices: dict[int, str] = {}
    dressed = []
    for j, item in enumerate(items):
        device = int(item["bacnet_data"]["device_id"])
        if device not in devices:
            devices[device] = _device_uuid(seed, site, device)
        point = _point(site, j, item, ids, interval_s, devices[device], _stamps(stamps[j]))
        dressed.append({k: None if k in nulls and nulls[k][j] else v for k, v in point.items()})
    return tuple(dressed), null_enabled


def _point(
    site: str, j: int, item: dict[str, Any], ids: tuple[int, int], interval_s: int, device_uuid: str,
    stamps: tuple[str, str],
) -> dict[str, Any]:  # fmt: skip
    point_id = ids[0] * _IDS_PER_SITE + j + 1
    device = int(item["bacnet_data"]["device_id"])
    return {
        "id": point_id,
        "name": item["name"],
        "site_id": ids[0],
        "site": site,
        "client_id": ids[1],
        "client": client_of(site),
        "marker_tags": item["marker_tags"],
        "kv_tags": item["kv_tags"],
        "bacnet_data": {
            **item["bacnet_data"],
            "device_address": f"10.{device >> 16 & 255}.{device >> 8 & 255}.{device & 255}",
            "scrape_interval": interval_s,
            "scrape_enabled": True,
        },
        "collect_config": {"scrape_interval": interval_s, "cov": False},
        "point_type": item["point_type"],
        "collect_interval": interval_s,
        "topic_id": point_id,
        "device_id": device_uuid,
        "created": stamps[0],
        "updated": stamps[1],
    }


def collect_enabled_value(enabled: bool, null: bool) -> bool | None:
    """What ``collect_enabled`` says for a point: null where the catalog sends null and the point is
    collected (a point switched off at runtime says false)."""
    return None if enabled and null else enabled


def site_item(seed: int, site: str, position: int) -> dict[str, Any]:
    """A site as the vendor's ``Site`` lists it; sites at odd positions say ``archived: null``."""
    h = hash64(seed, "site", site)
    created, updated = _stamps(h)
    return {
        "id": site_id(seed, site),
        "name": site,
        "nice_name": f"Site {site}",
        "address": f"{100 + h % 900} Main Street",
        "vtron_ip": f"10.0.{position % 256}.10",
        "vtron_user": "volttron",
        "ansible_user": "ace",
        "latitude": round(25 + (h >> 8) % 2000 / 100, 2),
        "longitude": round(-120 + (h >> 24) % 5000 / 100, 2),
        "geo_location": None,
        "mqtt_prefix": f"{client_of(site)}/{site}",
        "client_id": client_id(seed, site),
        "client": client_of(site),
        "archived": None if position % 2 else False,
        "created": created,
        "updated": updated,
    }
