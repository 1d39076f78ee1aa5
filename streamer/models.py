"""Wire models: what the ACE API sends, and what travels on each Kafka topic.

The Kafka models are the source of the JSON Schemas in ``streamer/kafka_schemas/`` (``streamer schemas``
regenerates them; a test checks they are current). Values are JSON encoded with orjson.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

RawValue = float | int | str | bool | None
"""A sample value exactly as the API gave it: number, numeric string, boolean, null, "nan", "inf"."""


# ---------------------------------------------------------------------------------------------- ACE API
def _null_as_absent(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """The vendor's models allow null in these fields; a null means what an absent field means."""
    if value is None and info.field_name is not None:
        return model.model_fields[info.field_name].get_default(call_default_factory=True)
    return value


class AcePoint(BaseModel):
    """A configured point. Only ``name`` is guaranteed; unknown fields are kept in ``model_extra``.

    Null ``marker_tags``/``kv_tags`` are empty and a null ``collect_enabled`` is collected, as when the
    field is absent; a null ``collect_interval`` is not declared (README, notes on the API).
    """

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

    @field_validator("marker_tags", "kv_tags", "collect_enabled", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        return _null_as_absent(cls, value, info)


class AceSite(BaseModel):
    """A site of ``GET /sites/``; null ``collect_enabled``/``archived`` mean what absent ones mean."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    collect_enabled: bool = True
    archived: bool = False

    @field_validator("collect_enabled", "archived", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        return _null_as_absent(cls, value, info)


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


DLQ_HEADERS = (
    "error_class",
    "error_message",
    "stage",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "batch_token",
    "app_version",
    "letter_id",
    "replayed_from",
    "dlq_written_at",
)
"""Headers of an ``ace.dlq`` record (utf-8). ``letter_id`` names the letter across replays: the
``source_topic:source_partition:source_offset`` of its first failure. A replayed record carries
``letter_id``, ``replayed_from`` (the DLQ record it came from), ``attempts``, ``first_failed_at`` and
``dlq_written_at`` (epoch ms of that DLQ record)."""

LetterStatus = Literal["failed", "replayed", "acked", "purged"]


class DlqLetterState(BaseModel):
    """``ace.dlq_state`` value, key ``{letter_id}`` (compacted): what became of a dead letter.

    ``replayed``: republished, outcome pending. ``failed``: a replay failed again (the letter is not
    appended to ``ace.dlq`` a second time). ``acked`` / ``purged``: an operator closed it.
    """

    model_config = ConfigDict(title="ace.dlq_state value")

    letter_id: str
    status: LetterStatus
    attempts: int = Field(ge=1, description="Failures so far.")
    updated_at_ms: int
    error_class: str | None = None
    error_message: str | None = None
    stage: str | None = None


def point_key(site: str, point: str) -> str:
    """The Kafka key of a point's records on ``ace.samples`` and ``ace.points``."""
    return f"{site}/{point}"
