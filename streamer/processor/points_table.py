"""The configured-points table: a global, in-memory view of the compacted ``ace.points`` topic.

Not a faust Table: a faust Table is sharded by partition (then ``ace.samples`` and ``ace.points``
must stay co-partitioned) and its GlobalTable has open recovery bugs with several workers. The topic
is compacted, so it is its own changelog: every worker reads ALL its partitions from the beginning
with a group-less consumer (``TopicReader``) and keeps only what judging needs (key → enabled).

Ordering guarantee: the producer acks a cycle's point changes before it publishes that cycle's
samples. ``catch_up()`` reads the end offsets *now* (after the batch of samples was polled) and
consumes up to them, so a batch is judged against every points update published before its samples.

Every applied record also yields a row for ClickHouse's ``points`` table (``PointRow``; a tombstone
is a row with ``deleted = 1``), versioned by the record's Kafka timestamp: one clock for versions and
tombstones, so a point re-enabled after a tombstone is current again. ``take_rows()`` hands them to
the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streamer.kafka import TopicReader
from streamer.models import PointRecord
from streamer.processor.normalise import is_always_kept
from streamer.settings import Settings
from streamer.sink.rows import PointRow

log = logging.getLogger(__name__)

DROP_NOT_CONFIGURED = "not_configured"
DROP_DISABLED = "disabled"


class PointsTable:
    """Key ``{site}/{point}`` → collect_enabled, fed by ``ace.points``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reader: TopicReader | None = None
        self._enabled: dict[str, bool] = {}
        self._names: dict[str, tuple[str, str]] = {}
        self._rows: list[PointRow] = []
        self.recovered = False
        self.undecodable = 0

    def __len__(self) -> int:
        return len(self._enabled)

    async def start(self) -> None:
        self._reader = TopicReader(self._settings, self._settings.topic_points, client_suffix="points-table")
        await self._reader.start()

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()

    async def wait_recovered(self) -> int:
        """Consume the whole topic as it is now; call before the first sample is judged."""
        seen = await self.catch_up()
        self.recovered = True
        log.info("points table recovered: %d records read, %d points known", seen, len(self._enabled))
        return seen

    async def catch_up(self) -> int:
        """Consume every points update published before this call."""
        if self._reader is None:
            raise RuntimeError("PointsTable.start() was not awaited")
        return await self._reader.read_to_end(self.apply)

    def judge(self, site: str, point: str) -> str | None:
        """None to keep the point's samples, else the reason they are dropped."""
        enabled = self._enabled.get(f"{site}/{point}")
        if enabled:
            return None
        if is_always_kept(point):
            return None
        return DROP_NOT_CONFIGURED if enabled is None else DROP_DISABLED

    def take_rows(self) -> list[PointRow]:
        """The ``points`` rows accumulated since the last call."""
        rows, self._rows = self._rows, []
        return rows

    def apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply ``ace.points`` records in order (a null value removes the point)."""
        for record in records:
            if record.key is None:
                self.undecodable += 1
                continue
            key = record.key.decode("utf-8", "replace")
            if record.value is None:
                self._remove(key, record.timestamp)
                continue
            try:
                point = PointRecord.model_validate_json(record.value)
            except ValidationError as exc:
                # The point stays unknown (its samples are dropped as not configured) until fixed.
                self.undecodable += 1
                log.warning(
                    "undecodable ace.points record %s at offset %d: %s", key, record.offset, exc.errors()[0]
                )
                continue
            self._enabled[key] = point.collect_enabled
            self._names[key] = (point.site, point.point)
            # Versioned by the Kafka timestamp like tombstones: one clock orders a point's versions.
            self._rows.append(replace(PointRow.from_record(point), version=max(record.timestamp, 0)))

    def _remove(self, key: str, version: int) -> None:
        self._enabled.pop(key, None)
        site, _, point = key.partition("/")
        site, point = self._names.pop(key, (site, point))
        self._rows.append(PointRow.tombstone(site, point, max(version, 0)))
