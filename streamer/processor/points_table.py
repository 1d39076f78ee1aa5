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
the sink; ``catch_up(flush)`` hands them over every ``ROWS_CHUNK`` rows while it reads, so a recovery
of a million points never holds a million rows.

Memory: every worker holds every configured point of every site, so the table is one compact map
per site (``SitePoints``, ~35 bytes a point; the site's name held once) of point → collect_enabled.
That is the same mapping as one dict keyed by the Kafka key ``{site}/{point}``: a key is split at its
first ``/`` (a site holding a ``/`` is found by splitting the joined key the same way), and a key
without ``/`` — which no sample can match — is kept apart. The (site, point) a tombstone's row names
is the one of the key's last value; it is kept only where it differs from the key's split (a ``/``
in the site, a value under a foreign key).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streamer.kafka import TopicReader
from streamer.models import PointRecord
from streamer.processor.normalise import is_always_kept
from streamer.processor.site_points import SitePoints
from streamer.settings import Settings
from streamer.sink.rows import PointRow

log = logging.getLogger(__name__)

DROP_NOT_CONFIGURED = "not_configured"
DROP_DISABLED = "disabled"


ROWS_CHUNK = 5_000  # points rows handed to the sink at a time while the table reads
FETCH_BYTES = 1024 * 1024  # per partition, a fetch of ace.points
HOT_MAX = 100_000  # keys whose verdicts are memoised (bounded whatever the table holds)
_UNSEEN = object()

FlushRows = Callable[[list[PointRow]], Awaitable[None]]


class PointsTable:
    """Key ``{site}/{point}`` → collect_enabled, fed by ``ace.points``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reader: TopicReader | None = None
        self._sites: dict[str, SitePoints] = {}  # key split at its first "/": head → tail → enabled
        self._unsplit: dict[str, bool] = {}  # keys without "/" (no sample matches them)
        self._names: dict[str, tuple[str, str]] = {}  # only where the value's names differ from the split
        # The verdicts of the keys judged lately (the compact maps bisect, a dict answers at once);
        # every change of a key drops its entry, so a verdict is never stale.
        self._hot: dict[str, bool | object | None] = {}
        self._rows: list[PointRow] = []
        self.recovered = False
        self.undecodable = 0

    def __len__(self) -> int:
        return len(self._unsplit) + sum(len(points) for points in self._sites.values())

    async def start(self) -> None:
        # 1 MiB a partition (not the reader's 4): a recovery prefetches every partition at once, so the
        # consumer holds up to 8 MiB of fetched records with 8 partitions, not 32.
        self._reader = TopicReader(
            self._settings, self._settings.topic_points, client_suffix="points-table", fetch_bytes=FETCH_BYTES
        )
        await self._reader.start()

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()

    async def wait_recovered(self, flush: FlushRows | None = None) -> int:
        """Consume the whole topic as it is now; call before the first sample is judged."""
        seen = await self.catch_up(flush)
        self.recovered = True
        log.info("points table recovered: %d records read, %d points known", seen, len(self))
        return seen

    async def catch_up(self, flush: FlushRows | None = None) -> int:
        """Consume every points update published before this call; with ``flush``, hand it the rows
        every ``ROWS_CHUNK`` (the rest stays for ``take_rows``)."""
        if self._reader is None:
            raise RuntimeError("PointsTable.start() was not awaited")
        seen = 0
        async for records in self._reader.batches_to_end():
            seen += len(records)
            self.apply(records)
            while flush is not None and len(self._rows) >= ROWS_CHUNK:
                chunk, self._rows = self._rows[:ROWS_CHUNK], self._rows[ROWS_CHUNK:]
                await flush(chunk)
        return seen

    def judge(self, site: str, point: str) -> str | None:
        """None to keep the point's samples, else the reason they are dropped."""
        key = f"{site}/{point}"
        enabled = self._hot.get(key, _UNSEEN)
        if enabled is _UNSEEN:
            enabled = self._lookup(key)
            if len(self._hot) >= HOT_MAX:
                self._hot.clear()  # wholesale, as TimeCache: cheap and rare
            self._hot[key] = enabled
        if enabled:
            return None
        if is_always_kept(point):
            return None
        return DROP_NOT_CONFIGURED if enabled is None else DROP_DISABLED

    def _lookup(self, key: str) -> bool | None:
        head, _, tail = key.partition("/")
        points = self._sites.get(head)
        return None if points is None else points.get(tail)

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
            self._set(key, point.collect_enabled)
            if (point.site, point.point) == _split(key):
                self._names.pop(key, None)
            else:
                self._names[key] = (point.site, point.point)
            # Versioned by the Kafka timestamp like tombstones: one clock orders a point's versions.
            self._rows.append(replace(PointRow.from_record(point), version=max(record.timestamp, 0)))

    def _set(self, key: str, enabled: bool) -> None:
        self._hot.pop(key, None)
        head, slash, tail = key.partition("/")
        if not slash:
            self._unsplit[key] = enabled
            return
        points = self._sites.get(head)
        if points is None:
            points = self._sites[head] = SitePoints()
        points.set(tail, enabled)

    def _remove(self, key: str, version: int) -> None:
        self._hot.pop(key, None)
        head, slash, tail = key.partition("/")
        if not slash:
            self._unsplit.pop(key, None)
        elif (points := self._sites.get(head)) is not None:
            points.remove(tail)
            if not points:
                del self._sites[head]
        site, point = self._names.pop(key) if key in self._names else _split(key)
        self._rows.append(PointRow.tombstone(site, point, max(version, 0)))


def _split(key: str) -> tuple[str, str]:
    """The (site, point) a key names when its value does not say: split at the first ``/``."""
    site, _, point = key.partition("/")
    return site, point
