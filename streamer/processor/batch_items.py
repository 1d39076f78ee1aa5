"""The units a batch is made of: polled items, their valid rows (parts), the staged batch."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from streamer.errors import FutureSampleError, RecordDecodeError
from streamer.processor.dlq import STAGE_NORMALISE, DeadLetter
from streamer.processor.normalise import Normalised, RawRecord
from streamer.processor.port import Delivery
from streamer.sink.native import Run


@dataclass(slots=True)
class Item:
    """A polled record: where it came from, its raw bytes, and what decoding made of it."""

    handle: Any  # what ``ack`` needs (the ``Delivery``)
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes]
    record: RawRecord | None = None
    error: RecordDecodeError | None = None
    normalised: Normalised | None = None  # done ahead when the point looked collected at poll time
    max_ms: int = 0  # the latest sample time accepted when it was normalised (now + max_future_s)
    crc: int | None = None  # crc32 of ``value``, once asked for (``source_crc``)

    @property
    def source_crc(self) -> int:
        """crc32 of the record's value: the batch token's stand-in for the topic's identity."""
        if self.crc is None:
            self.crc = zlib.crc32(self.value or b"")
        return self.crc

    @property
    def source_rows(self) -> int:
        return -1  # a polled record: its rows are not judged yet


def item_of(delivery: Delivery) -> Item:
    """The pipeline's view of a delivery (acked through it). The item takes the delivery's bytes:
    the delivery outlives the batch until its ack (``pending_acks``), the bytes need not."""
    item = Item(
        delivery,
        delivery.topic,
        delivery.partition,
        delivery.offset,
        delivery.key,
        delivery.value,
        delivery.headers,
    )
    delivery.key = delivery.value = None
    delivery.headers = {}
    return item


class SourceOf:
    """Where a part's record came from (DLQ headers, dedup tokens): delegated to its item."""

    __slots__ = ()
    item: Item

    @property
    def source_topic(self) -> str:
        return self.item.source_topic

    @property
    def source_partition(self) -> int:
        return self.item.source_partition

    @property
    def source_offset(self) -> int:
        return self.item.source_offset

    @property
    def source_crc(self) -> int:
        return self.item.source_crc

    @property
    def source_rows(self) -> int:
        return -1


@dataclass(slots=True)
class Part(SourceOf):
    """The valid rows of one record."""

    item: Item
    site: str
    point: str
    ts_ms: list[int]
    values: list[float]
    hour: int | None = None  # the one hour (epoch s) of every row, if normalising saw it
    newest: int | None = None  # the latest of ts_ms, if normalising saw it

    @property
    def source_rows(self) -> int:
        return len(self.ts_ms)


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did (also fed to the metrics)."""

    records: int = 0
    samples: int = 0
    inserted: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0


@dataclass(slots=True)
class Staged:
    """A batch judged and normalised, ready to load."""

    items: Sequence[Item]
    outcome: BatchOutcome
    token: str
    started: float
    letters: list[DeadLetter] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    keys: set[tuple[str, str, int]] = field(default_factory=set)  # (site, point, hour) of the rows


def runs(parts: Sequence[Part]) -> list[Run]:
    """The insert's runs of ``parts``: each part's rows with its site and point, in order."""
    return [(part.site, part.point, part.ts_ms, part.values) for part in parts]


def dead_letter(item: Item, exc: Exception, stage: str, token: str) -> DeadLetter:
    """The dead letter of ``item`` failed with ``exc`` at ``stage`` in the batch ``token``."""
    return DeadLetter(
        key=item.key,
        value=item.value,
        error_class=type(exc).__name__,
        error_message=str(exc),
        stage=stage,
        source_topic=item.source_topic,
        source_partition=item.source_partition,
        source_offset=item.source_offset,
        batch_token=token,
        source_headers=item.headers,
    )


def future_letter(item: Item, record: RawRecord, future: list[Any], max_ms: int, token: str) -> DeadLetter:
    """The dead letter of a record's samples dated after ``max_ms``: only those samples, replayable."""
    value = orjson.dumps({"site": record.site, "point": record.point, "samples": future})
    error = FutureSampleError(f"{len(future)} sample(s) dated after {max_ms} (now + max_future_s)")
    return replace(dead_letter(item, error, STAGE_NORMALISE, token), value=value)
