"""Configured points → ``ace.points`` changes: a pure diff against what was last published.

Only changes travel: a new or changed point becomes a ``PointRecord``; a point that disappeared or whose
collection was disabled becomes a tombstone (null value) so compaction forgets it and the processor stops
collecting it. ``updated_at_ms`` is not part of the comparison, or every refresh would republish all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streamer.ace.weather import WEATHER_POINTS
from streamer.models import AcePoint, PointRecord, point_key

PointContent = dict[str, Any]
"""A ``PointRecord`` as a plain dict without ``updated_at_ms``: what the diff compares."""


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


def content(record: PointRecord | Mapping[str, Any]) -> PointContent:
    """The comparable part of a point record (also accepts a decoded ``ace.points`` value)."""
    data = record.model_dump(mode="json") if isinstance(record, PointRecord) else dict(record)
    data.pop("updated_at_ms", None)
    return data


def diff_points(
    site: str,
    previous: Mapping[str, PointContent],
    current: Iterable[PointRecord],
) -> tuple[list[PointChange], dict[str, PointContent]]:
    """Changes that turn ``previous`` (point → last published content of this site) into ``current``.

    Returns the changes to publish and the new published set. Disabled points are tombstoned when they
    were published before and otherwise not mentioned at all.
    """
    changes: list[PointChange] = []
    published: dict[str, PointContent] = {}
    for record in current:
        if not record.collect_enabled or record.point in published:
            continue
        now = content(record)
        published[record.point] = now
        if previous.get(record.point) != now:
            changes.append(PointChange(site, record.point, orjson.dumps(record.model_dump(mode="json"))))
    for point in previous:
        if point not in published:
            changes.append(PointChange(site, point, None))
    return changes, published


def decode_point_value(value: bytes) -> PointContent:
    """A published ``ace.points`` value back into comparable content."""
    return content(orjson.loads(value))
