"""What every part of the producer shares: settings, the ACE client, the Kafka producer, the clock, and the
state recovered from the compacted topics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer import times
from streamer.errors import KafkaTransientError
from streamer.models import AcePoint, AceSite, SyncState
from streamer.producer.overlap import Seen
from streamer.producer.points import PointDigest
from streamer.producer.publisher import BatchPublisher
from streamer.producer.windows import window_now
from streamer.settings import Settings

if TYPE_CHECKING:
    from streamer.producer.repair import RepairLoop

_EMPTY: Mapping[str, Any] = {}

Clock = Callable[[], int]
"""Epoch milliseconds; injectable so tests and ``--now`` fix the time."""


system_clock: Clock = times.now_ms
"""The wall clock (``streamer.times.now_ms``), the producer's default."""


def fixed_clock(now_ms: int) -> Clock:
    return lambda: now_ms


class SiteStats(Protocol):
    api_calls: int


class AceApi(Protocol):
    """The part of ``streamer.ace.client.AceClient`` the producer uses."""

    async def list_sites(self) -> list[AceSite]: ...

    async def list_points(self, site: str) -> list[AcePoint]: ...

    def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> Any: ...

    async def get_weather(self, site: str) -> list[Any]: ...

    def site_stats(self, site: str) -> Any: ...

    def api_now_ms(self) -> int | None: ...


class SiteBook:
    """What this worker knows of each site: its sync state (or why its record is unreadable), its points
    table, when that was last refreshed, and where its catch-up marks stand. The one owner of that
    state: everything else reads it (as mappings) and changes it through these methods only."""

    def __init__(self) -> None:
        self._states: dict[str, SyncState] = {}
        self._broken_sync: dict[str, str] = {}  # site → why its ace.sync record is unreadable
        self._points: dict[str, dict[str, PointDigest]] = {}
        self._points_refreshed: dict[str, float] = {}  # site → time.monotonic() of its last refresh
        # site → the first instant its windows read after the last points refresh (producer/catchup.py)
        self._refresh_marks: dict[str, int] = {}
        self._window_pages: dict[str, int] = {}  # site → pages its last window took (sync.read_spans)
        self._seen: dict[str, Seen] = {}  # site → what its last incremental window read (producer/overlap.py)

    @property
    def states(self) -> Mapping[str, SyncState]:
        return self._states

    @property
    def broken_sync(self) -> Mapping[str, str]:
        return self._broken_sync

    @property
    def points(self) -> Mapping[str, dict[str, PointDigest]]:
        return self._points

    @property
    def points_refreshed(self) -> Mapping[str, float]:
        return self._points_refreshed

    @property
    def refresh_marks(self) -> Mapping[str, int]:
        return self._refresh_marks

    @property
    def window_pages(self) -> Mapping[str, int]:
        return self._window_pages

    @property
    def seen(self) -> Mapping[str, Seen]:
        return self._seen

    def recover(
        self,
        states: Mapping[str, SyncState] = _EMPTY,
        broken: Mapping[str, str] = _EMPTY,
        points: Mapping[str, dict[str, PointDigest]] = _EMPTY,
    ) -> None:
        """What the compacted topics held (at start-up): states, unreadable records, points tables."""
        self._states.update(states)
        self._broken_sync.update(broken)
        self._points.update(points)

    def adopt(
        self, site: str, state: SyncState | None, broken: str | None, points: dict[str, PointDigest] | None
    ) -> None:
        """A site just gained from another worker, as ``ace.sync`` and ``ace.points`` hold it now; its
        points are refreshed in the next cycle (its refreshes meanwhile were the other worker's)."""
        _replace(self._states, site, state)
        _replace(self._broken_sync, site, broken)
        _replace(self._points, site, points)
        self.expire_points(site)
        self._refresh_marks.pop(site, None)
        self._seen.pop(site, None)

    def state_read(self, site: str, state: SyncState | None) -> None:
        """The site's ``ace.sync`` record is readable again (``state``; None: there is none)."""
        self._broken_sync.pop(site, None)
        _replace(self._states, site, state)

    def state_unreadable(self, site: str, why: str) -> None:
        self._broken_sync[site] = why

    def advanced(self, site: str, state: SyncState) -> None:
        """The site's watermark moved (``state`` is acknowledged in ``ace.sync``)."""
        self._states[site] = state

    def points_published(
        self, site: str, points: dict[str, PointDigest], at: float, *, changed: bool = False
    ) -> None:
        """The site's points table as published in ``ace.points``, refreshed at ``at`` (monotonic);
        ``changed``: the refresh published changes, so the next window publishes its overlap whole."""
        self._points[site] = points
        self._points_refreshed[site] = at
        if changed:
            self._seen.pop(site, None)

    def expire_points(self, site: str) -> None:
        """The site's points are due for a refresh now."""
        self._points_refreshed.pop(site, None)

    def window_read(self, site: str, pages: int) -> None:
        """The site's last window took ``pages`` pages (whether the next is read in two spans)."""
        self._window_pages[site] = pages

    def window_seen(self, site: str, seen: Seen | None) -> None:
        """What the site's incremental window, acknowledged now, read (None: forget what was known)."""
        _replace(self._seen, site, seen)

    def retain(self, owns: Callable[[str], bool]) -> int:
        """Forget every site this worker does not own now (handed over, or recovered at start-up for
        the whole cluster); a site gained again is re-read from the topics (``adopt``). Returns how
        many were forgotten."""
        maps: tuple[dict[str, Any], ...] = (
            self._states,
            self._broken_sync,
            self._points,
            self._points_refreshed,
            self._refresh_marks,
            self._window_pages,
            self._seen,
        )
        gone = {site for mapping in maps for site in mapping if not owns(site)}
        for mapping in maps:
            for site in gone:
                mapping.pop(site, None)
        return len(gone)

    def mark_refresh(self, site: str, from_ms: int) -> None:
        """Windows read from ``from_ms`` on saw the site's latest points refresh (producer/catchup.py)."""
        self._refresh_marks[site] = from_ms


def _replace(mapping: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


@dataclass
class ProducerContext:
    settings: Settings
    client: AceApi
    producer: AIOKafkaProducer
    clock: Clock = system_clock
    partitions: dict[str, list[int]] = field(default_factory=dict)
    book: SiteBook = field(default_factory=SiteBook)  # the sites' state: changed through it only
    partition_cache: dict[str, dict[bytes, int]] = field(default_factory=dict)
    repair: RepairLoop | None = None  # the repair loop (producer/repair.py); None: off
    record_max_bytes: int = 1_000_000  # an ace.samples record at most (open_producer: the topic's limit)
    samples_since_full_gc: int = 0  # fetched since the last full GC pass (sync.FULL_GC_SAMPLES)

    @property
    def states(self) -> Mapping[str, SyncState]:
        return self.book.states

    @property
    def broken_sync(self) -> Mapping[str, str]:
        return self.book.broken_sync

    @property
    def points(self) -> Mapping[str, dict[str, PointDigest]]:
        return self.book.points

    @property
    def points_refreshed(self) -> Mapping[str, float]:
        return self.book.points_refreshed

    @property
    def refresh_marks(self) -> Mapping[str, int]:
        return self.book.refresh_marks

    def window_now(self) -> int:
        """Where windows may end now: the local clock bounded by the API's (its ``Date``, less a margin)."""
        return window_now(self.clock(), self.client.api_now_ms(), self.settings.ace_clock_margin_s)

    def publisher(self, topic: str) -> BatchPublisher:
        cache = self.partition_cache.setdefault(topic, {})
        return BatchPublisher(self.producer, topic, self.partitions[topic], partition_cache=cache)

    async def send_and_wait(self, topic: str, key: bytes, value: bytes | None) -> None:
        try:
            await self.producer.send_and_wait(topic, value=value, key=key)
        except KafkaError as exc:
            raise KafkaTransientError(f"publishing to {topic} failed: {exc}") from exc
