"""A minimal, independent client of the simulator for its tests: walk pages, summarise samples."""

from __future__ import annotations

import asyncio
import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

TOKEN = "dev-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
RETRY = {429, 500, 502, 503, 504}


def ts_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return round(moment.timestamp() * 1000)


@dataclass
class Walk:
    samples: dict[tuple[str, int], Any] = field(default_factory=dict)
    pages: int = 0
    empty_pages: int = 0
    repeats: int = 0
    failures: int = 0
    order: list[tuple[str, int]] = field(default_factory=list)


async def get_json(
    client: httpx.AsyncClient, url: str, params: dict[str, Any], walk: Walk, attempts: int
) -> Any:
    """GET and decode, retrying 429/5xx/truncated bodies up to ``attempts`` times (no sleeping)."""
    for attempt in range(attempts):
        response = await client.get(url, params=params)
        if response.status_code in RETRY or (response.status_code == 200 and not _is_json(response.content)):
            walk.failures += 1
            if attempt + 1 < attempts:
                await asyncio.sleep(0)
                continue
        response.raise_for_status()
        return orjson.loads(response.content)
    raise AssertionError("unreachable")


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


async def walk_window(
    client: httpx.AsyncClient, base: str, site: str, start: int, end: int, page_size: int, attempts: int = 1
) -> Walk:
    """Every page of one window, following cursors until has_more is false or the cursor is gone."""
    walk = Walk()
    params: dict[str, Any] = {
        "start_time": _iso(start),
        "end_time": _iso(end),
        "page_size": page_size,
        "raw_data": "true",
    }
    seen_cursors: set[str] = set()
    while True:
        page = await get_json(client, f"{base}/sites/{site}/timeseries/paginated", params, walk, attempts)
        walk.pages += 1
        walk.empty_pages += not page["point_samples"]
        for sample in page["point_samples"]:
            key = (sample["name"], ts_ms(sample["time"]))
            if key in walk.samples:
                walk.repeats += 1
                assert walk.samples[key] == sample["value"], key
                continue
            walk.samples[key] = sample["value"]
            walk.order.append(key)  # first sightings, in the order served
        cursor = page.get("next_cursor")
        if not page["has_more"] or not cursor:
            return walk
        assert cursor not in seen_cursors, "a cursor came twice"
        seen_cursors.add(cursor)
        params = {"cursor": cursor, "page_size": page_size}


def _iso(ms: int) -> str:
    """A request time in a +02:00 offset: the server must read offsets, not assume UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone(timedelta(hours=2))).isoformat(
        timespec="milliseconds"
    )


async def configured_points(
    client: httpx.AsyncClient, base: str, site: str, per_page: int = 500
) -> dict[str, bool]:
    """name -> collected, over every page of configured_points (a null collect_enabled is collected)."""
    points: dict[str, bool] = {}
    page = 1
    while True:
        response = await client.get(
            f"{base}/sites/{site}/configured_points", params={"page": page, "per_page": per_page}
        )
        response.raise_for_status()
        body = response.json()
        points.update({item["name"]: item.get("collect_enabled") is not False for item in body["items"]})
        if page >= body["pages"]:
            return points
        page += 1


def valid_milli(value: Any) -> int | None:
    """Valid values (number, numeric string, boolean; finite) in milli units; None otherwise."""
    if isinstance(value, bool):
        return 1000 if value else 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(value * 1000)


def summarise(
    site: str, start: int, end: int, samples: dict[tuple[str, int], Any], points: dict[str, bool]
) -> dict[str, Any]:
    """What the pipeline would hold, computed from walked samples in the shape of expected()."""
    crcs = {key: zlib.crc32(f"{site}/{key[0]}@{key[1]}".encode()) for key in samples}
    valid = {
        key: milli
        for key, value in samples.items()
        if points.get(key[0]) and (milli := valid_milli(value)) is not None
    }
    return {
        "site": site,
        "start_ms": start,
        "end_ms": end,
        "all": {"count": len(samples), "key_checksum": sum(crcs.values())},
        "valid": {
            "count": len(valid),
            "key_checksum": sum(crcs[key] for key in valid),
            "value_milli_sum": sum(valid.values()),
        },
    }
