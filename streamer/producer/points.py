"""Configured points → ``ace.points`` changes: a pure diff against what was last published.

Only changes travel: a new or changed point becomes a ``PointRecord``; a point that disappeared or whose
collection was disabled becomes a tombstone (null value) so compaction forgets it and the processor stops
collecting it. ``updated_at_ms`` is not part of the comparison, or every refresh would republish all.

What was published is remembered as a 16-byte digest of each point's content, not the content: a
worker holds every owned site's table between refreshes, and a point's decoded record (tags, BACnet
metadata, extra API fields) is ~50 Python objects, ~2.5 KB; 200,000 points held ~600 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson

from streamer.ace.weather import WEATHER_POINTS
from streamer.models import AcePoint, PointRecord, point_key

PointDigest = bytes
"""A digest of a ``PointRecord``'s JSON without ``updated_at_ms`` (keys sorted): what the diff compares."""


@dataclass(frozen=True, slots=True)
class PointChange:
    """One record for ``ace.points``: ``value`` None is a tombstone."""

    site: str
    point: str
    value: bytes | None

    @property
    def key(self) -> bytes:
        return point_key(self.site, self.point).encode()


def point_record(site: str, point: AcePoint, now_ms: int) -> PointRecord:
    """The wire record of a configured point; fields the model does not name go to ``metadata``."""
    metadata: dict[str, Any] = dict(point.model_extra or {})
    if point.client is not None:
        metadata["client"] = point.client
    if point.bacnet_data is not None:
        metadata["bacnet_data"] = point.bacnet_data
    unit = point.kv_tags.get("unit")
    return PointRecord(
        site=site,
        point=point.name,
        collect_enabled=point.collect_enabled,
        collect_interval=point.collect_interval,
        point_type=point.point_type,
        unit=unit if isinstance(unit, str) else None,
        marker_tags=list(point.marker_tags),
        kv_tags=dict(point.kv_tags),
        metadata=metadata,
        updated_at_ms=now_ms,
    )


def weather_records(site: str, now_ms: int) -> list[PointRecord]:
    """The ``weather.*`` points of a site (always collected)."""
    return [
        PointRecord(
            site=site,
            point=name,
            collect_enabled=True,
            point_type="weather",
            marker_tags=["weather", field],
            metadata={"source": "weather", "field": field},
            updated_at_ms=now_ms,
        )
        for field, name in WEATHER_POINTS.items()
    ]


def digest(data: Mapping[str, Any]) -> PointDigest:
    """The comparable part of a point record's JSON form (``model_dump(mode="json")``, or a decoded
    ``ace.points`` value): equal contents give equal digests, whatever their keys' order."""
    comparable = {k: v for k, v in data.items() if k != "updated_at_ms"}
    return blake2b(orjson.dumps(comparable, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def diff_points(
    site: str,
    previous: Mapping[str, PointDigest],
    current: Iterable[PointRecord],
) -> tuple[list[PointChange], dict[str, PointDigest]]:
    """Changes that turn ``previous`` (point → digest of the last published content of this site) into
    ``current``.

    Returns the changes to publish and the new published set. Disabled points are tombstoned when they
    were published before and otherwise not mentioned at all.
    """
    changes: list[PointChange] = []
    published: dict[str, PointDigest] = {}
    for record in current:
        if not record.collect_enabled or record.point in published:
            continue
        data = record.model_dump(mode="json")
        now = published[record.point] = digest(data)
        if previous.get(record.point) != now:
            changes.append(PointChange(site, record.point, orjson.dumps(data)))
    for point in previous:
        if point not in published:
            changes.append(PointChange(site, point, None))
    return changes, published


def decode_point_value(value: bytes) -> PointDigest:
    """A published ``ace.points`` value back into the digest of its content."""
    data = orjson.loads(value)
    if not isinstance(data, dict):
        raise orjson.JSONDecodeError("not an object", "", 0)
    return digest(data)
