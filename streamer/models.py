"""Wire models: what the ACE API sends, and what travels on each Kafka topic.

The Kafka models are the source of the JSON Schemas in ``schemas/kafka/`` (``streamer schemas``
regenerates them; a test checks they are current). Values are JSON encoded with orjson.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RawValue = float | int | str | bool | None
"""A sample value exactly as the API gave it: number, numeric string, boolean, null, "nan", "inf"."""


# ---------------------------------------------------------------------------------------------- ACE API
class AcePoint(BaseModel):
    """A configured point. Only ``name`` is guaranteed; unknown fields are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    site: str | None = None
    client: str | None = None
    marker_tags: list[str] = Field(default_factory=list)
    kv_tags: dict[str, Any] = Field(default_factory=dict)
    collect_enabled: bool = True
    collect_interval: int | None = None
    point_type: str | None = None
    bacnet_data: dict[str, Any] | None = None


class AceSite(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    collect_enabled: bool = True
    archived: bool = False


class AceSample(BaseModel):
    """One raw sample as the timeseries endpoint returns it (used at the edges; hot paths use tuples)."""

    name: str
    time: str
    value: RawValue = None


# ------------------------------------------------------------------------------------------ Kafka topics
class SamplesRecord(BaseModel):
    """``ace.samples`` value, key ``{site}/{point}``: raw samples of one point, as the API gave them.

    ``samples`` holds ``[time, value]`` pairs: ``time`` is the API's ISO 8601 string, ``value`` is the
    API's raw value (number, numeric string, boolean, null, "nan", "inf"). The processor normalises.
    """

    model_config = ConfigDict(title="ace.samples value")

    site: str
    point: str
    samples: list[tuple[str, RawValue]]
    sync_id: str | None = Field(None, description="The producer window this record came from.")


class PointRecord(BaseModel):
    """``ace.points`` value, key ``{site}/{point}``. A tombstone (null value) removes the point."""

    model_config = ConfigDict(title="ace.points value")

    site: str
    point: str
    collect_enabled: bool = True
    collect_interval: int | None = None
    point_type: str | None = None
    unit: str | None = None
    marker_tags: list[str] = Field(default_factory=list)
    kv_tags: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Every other field the API sent.")
    updated_at_ms: int = Field(description="When the producer saw this version (epoch ms).")


class BackfillProgress(BaseModel):
    target_end_ms: int
    windows_done: int = 0


class SyncState(BaseModel):
    """``ace.sync`` value, key ``{site}``: the durable per-site watermark."""

    model_config = ConfigDict(title="ace.sync value")

    site: str
    watermark_ms: int = Field(description="Every sample before this instant has been published.")
    last_sync_id: str | None = None
    backfill: BackfillProgress | None = None
    updated_at_ms: int


class SyncRun(BaseModel):
    """``ace.sync_runs`` value, key ``{site}``: one row per producer window (the seed's recordMetrics)."""

    model_config = ConfigDict(title="ace.sync_runs value")

    sync_id: str
    site: str
    window_start_ms: int
    window_end_ms: int
    kind: str = Field(description="incremental, backfill or repair")
    started_at_ms: int
    duration_ms: int
    api_calls: int
    pages: int
    samples_fetched: int
    records_published: int
    samples_published: int
    errors: int
    status: str = Field(description="ok or failed")
    error: str | None = None
    samples_recovered: int = Field(
        0, description="repair: distinct samples stored after it that were missing before it"
    )


def point_key(site: str, point: str) -> str:
    """The Kafka key of a point's records on ``ace.samples`` and ``ace.points``."""
    return f"{site}/{point}"
