"""Pure transforms from wire models to the column-oriented batches the sink inserts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streamer.models import PointRecord, SyncRun
from streamer.sink.tables import SYNC_RUN_COLUMNS


@dataclass(frozen=True, slots=True)
class PointRow:
    """One version of a point in the ``points`` table; ``version`` orders versions (epoch ms)."""

    site: str
    point: str
    version: int
    collect_enabled: bool = True
    collect_interval: int | None = None
    point_type: str | None = None
    unit: str | None = None
    marker_tags: tuple[str, ...] = ()
    kv_tags: tuple[tuple[str, str], ...] = ()
    metadata: str = "{}"
    deleted: bool = False

    @classmethod
    def from_record(cls, record: PointRecord) -> PointRow:
        """The row of an ``ace.points`` value; its version is ``updated_at_ms``."""
        return cls(
            site=record.site,
            point=record.point,
            version=record.updated_at_ms,
            collect_enabled=record.collect_enabled,
            collect_interval=record.collect_interval,
            point_type=record.point_type,
            unit=record.unit,
            marker_tags=tuple(record.marker_tags),
            kv_tags=tuple((str(k), _tag_text(v)) for k, v in record.kv_tags.items()),
            metadata=orjson.dumps(record.metadata, option=orjson.OPT_SORT_KEYS).decode(),
        )

    @classmethod
    def tombstone(cls, site: str, point: str, version: int) -> PointRow:
        """The row of an ``ace.points`` tombstone seen at ``version`` (e.g. the record's timestamp)."""
        return cls(site=site, point=point, version=version, collect_enabled=False, deleted=True)


def _tag_text(value: Any) -> str:
    # Map(String, String): strings stay as they are, anything else becomes its JSON text.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def point_columns(rows: Sequence[PointRow]) -> list[list[Any]]:
    """Column-oriented data in the order of ``tables.POINT_COLUMNS``."""
    return [
        [r.site for r in rows],
        [r.point for r in rows],
        [int(r.collect_enabled) for r in rows],
        [r.collect_interval for r in rows],
        [r.point_type for r in rows],
        [r.unit for r in rows],
        [list(r.marker_tags) for r in rows],
        [dict(r.kv_tags) for r in rows],
        [r.metadata for r in rows],
        [int(r.deleted) for r in rows],
        [r.version for r in rows],
    ]


def sync_run_columns(runs: Sequence[SyncRun]) -> list[list[Any]]:
    """Column-oriented data in the order of ``tables.SYNC_RUN_COLUMNS``."""
    return [[getattr(run, name) for run in runs] for name in SYNC_RUN_COLUMNS]
