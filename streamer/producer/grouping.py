"""Group a window's samples by point across pages, in bounded memory.

Pages may hold long runs of one point or interleave every point by time. Publishing each page's
fragments would make tiny records when pages interleave; holding the whole window would make memory
unbounded. So samples are gathered per point across pages with two bounds: a point's samples are
emitted as a record when they reach ``record_max``, and when the total held would pass ``gather_max``
the largest groups are emitted first (they make the best records and free the most). ``finish`` emits
the rest. Every well-formed sample is emitted exactly once, in page order within its point.

A record also stays under ``max_bytes`` (the broker refuses larger ones, every cycle: the site would
never advance): a point's body is emitted before the next samples would pass it. A sample that cannot
be encoded (nested deeper than orjson's limit) or is larger than a record on its own is skipped and
counted as malformed, by reason (``malformed_by``), never raised: one sample must not stall its site.

Held samples are kept already JSON-encoded (``[time,value],`` runs in one bytearray per point), not as
Python tuples: ~40 bytes a sample instead of ~190, and no long-lived small objects scattered over the
heap by pages that are freed meanwhile (which kept the process's RSS at its all-time peak).

This is the hot path of the producer (millions of samples per backfill): the loop is kept flat.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from streamer.ace.pagination import Sample, sample_fields
from streamer.models import RawValue

Pair = tuple[str, RawValue]

# Reasons a sample is skipped (WindowStats.malformed, the "malformed samples skipped" log).
MALFORMED_SHAPE = "shape"  # not an object with a non-empty string name and time
MALFORMED_UNENCODABLE = "unencodable"  # orjson cannot encode it (nested deeper than its limit)
MALFORMED_TOO_LARGE = "too_large"  # larger than a record may be
UNBOUNDED = 2**62


class Group(NamedTuple):
    """Up to ``record_max`` samples of one point: ``body`` is the JSON array's elements without the
    brackets (``["t",v],["t",v]``), ready to be framed as a record."""

    point: str
    size: int
    body: bytes | bytearray

    def pairs(self) -> list[Pair]:
        """The samples as ``(time, value)`` tuples (for tests and debugging; not the hot path)."""
        return [(t, v) for t, v in orjson.loads(b"[" + bytes(self.body) + b"]")]


class PointGrouper:
    """Accumulates pages; each call returns the groups that must be published now."""

    def __init__(
        self,
        record_max: int,
        gather_max: int,
        max_bytes: int = UNBOUNDED,
        known: Iterable[str] = (),
        defer_max: int = 0,
    ) -> None:
        """``max_bytes``: what a record may hold beyond the window's constant frame (the point's name,
        in the key and in the value, and the samples' body). ``known``: points expected in the pages
        (the site's table): each one's first sample then skips the slow path. ``defer_max``: samples
        of pages kept as decoded, not grouped yet, until more arrive: encoding costs about as much
        per point as per sample when pages interleave every point (~11 samples a point in a
        50,000-sample page of 4,583 points), so grouping two pages at once halves that; a page's
        objects then live one page longer."""
        if record_max < 1 or gather_max < 1 or max_bytes < 1 or defer_max < 0:
            raise ValueError("record_max, gather_max and max_bytes must be positive, defer_max not negative")
        self.record_max = record_max
        self.gather_max = gather_max
        self.max_bytes = max_bytes
        self.held = 0
        self.peak_held = 0
        self.accepted = 0
        self.malformed = 0
        self.malformed_by: dict[str, int] = {}
        self.last_malformed: Any = None
        self._bodies: dict[str, bytearray] = {}
        self._counts: dict[str, int] = {}
        self._known: dict[str, None] = dict.fromkeys(known)
        self._limits: dict[str, int] = {}
        self.defer_max = defer_max
        self._deferred: list[Any] = []

    def add(self, samples: list[Any]) -> list[Group]:
        """Take one page of samples (``Sample`` structs, or whatever a page orjson decoded holds: dicts
        and anything else); returns the groups to publish (possibly none)."""
        if self.defer_max:
            self._deferred += samples
            if len(self._deferred) <= self.defer_max:
                return []
            samples, self._deferred = self._deferred, []
        return self._group(samples)

    def _group(self, samples: list[Any]) -> list[Group]:
        out: list[Group] = []
        step = self.gather_max
        for offset in range(0, len(samples), step):
            chunk = samples if len(samples) <= step else samples[offset : offset + step]
            self._make_room(len(chunk), out)
            self._take(chunk, out)
        return out

    def finish(self) -> list[Group]:
        """Everything still held or deferred: the end of the window."""
        out = self._group(self._deferred) if self._deferred else []
        self._deferred = []
        out += [Group(point, self._counts[point], body) for point, body in self._bodies.items()]
        self._bodies, self._counts = {}, {}
        self.held = 0
        return out

    def _take(self, chunk: list[Any], out: list[Group]) -> None:
        # The common case is a ``Sample`` (fields typed by the decoder, name and time not empty) of a
        # known point: an attribute read, a subscript and an append of the sample itself (a tuple per
        # sample here would be ~50k GC-tracked objects alive per page: a collection every page). A
        # point not seen before, or a sample that is not a ``Sample`` (a dict, anything) raises and
        # takes the slow path.
        buffers: dict[str, list[Sample]] = {point: [] for point in self._known}
        before = self.malformed
        for sample in chunk:
            try:
                buffers[sample.name].append(sample)
            except (KeyError, AttributeError):
                self._slow(sample, buffers)
        taken = len(chunk) - (self.malformed - before)
        self.accepted += taken
        self.held += taken
        self.peak_held = max(self.peak_held, self.held)
        self._fold(buffers, out)

    def _slow(self, sample: Any, buffers: dict[str, list[Sample]]) -> None:
        """A sample of a point not seen yet, a dict (a page orjson decoded), or malformed."""
        fields = sample_fields(sample)
        if fields is None:
            self._malformed(sample)
            return
        name, time, value = fields
        if not isinstance(name, str) or not name or not isinstance(time, str) or not time:
            self._malformed(sample)
            return
        buffer = buffers.get(name)
        if buffer is None:
            buffer = buffers[name] = []
            self._known[name] = None
        buffer.append(sample if sample.__class__ is Sample else Sample(name, time, value))

    def _fold(self, buffers: dict[str, list[Sample]], out: list[Group]) -> None:
        """Encode the chunk's samples onto each point's body; emit bodies that reach ``record_max``."""
        cap = self.record_max
        counts, bodies, limits = self._counts, self._bodies, self._limits
        dumps = orjson.dumps
        for point, samples in buffers.items():
            if not samples:
                continue
            pairs = [(s.time, s.value) for s in samples]  # short-lived: freed before the next point's
            body = bodies.get(point)
            # The common cases, inlined: one encoding opens the point's body or extends the open one.
            if (0 if body is None else counts[point]) + len(pairs) < cap:
                try:
                    encoded = dumps(pairs)
                except orjson.JSONEncodeError:
                    encoded = b""
                limit = limits.get(point) or self._limit(point)
                if encoded and len(encoded) + (0 if body is None else len(body)) <= limit:
                    if body is None:
                        bodies[point] = bytearray(memoryview(encoded)[1:-1])
                        counts[point] = len(pairs)
                    else:
                        body += b","
                        body += memoryview(encoded)[1:-1]
                        counts[point] += len(pairs)
                    continue
            self._fold_point(point, pairs, out)

    def _fold_point(self, point: str, pairs: list[Pair], out: list[Group]) -> None:
        """One point's samples, cut at ``record_max`` and encoded within the byte bound."""
        cap = self.record_max
        counts = self._counts
        while pairs:
            room = cap - counts.get(point, 0)
            head, pairs = (pairs, []) if len(pairs) < room else (pairs[:room], pairs[room:])
            self._append(point, head, out)
            if counts.get(point, 0) >= cap:
                self._emit(point, out)

    def _append(self, point: str, pairs: list[Pair], out: list[Group]) -> None:
        """Append ``pairs`` to the point's body in one encoding if it fits, else one by one."""
        body = self._bodies.get(point)
        limit = self._limits.get(point) or self._limit(point)
        try:
            encoded = orjson.dumps(pairs)
        except orjson.JSONEncodeError:
            self._append_each(point, pairs, limit, out)
            return
        if len(encoded) + (0 if body is None else len(body)) > limit:
            self._append_each(point, pairs, limit, out)
            return
        self._bodies[point] = _extend(body, encoded)
        self._counts[point] = self._counts.get(point, 0) + len(pairs)

    def _append_each(self, point: str, pairs: list[Pair], limit: int, out: list[Group]) -> None:
        """The slow path: skip what cannot be encoded or is too large; emit before passing ``limit``."""
        for pair in pairs:
            try:
                encoded = orjson.dumps(pair)
            except orjson.JSONEncodeError:
                self._skip(pair, MALFORMED_UNENCODABLE)
                continue
            if len(encoded) > limit:
                self._skip(pair, MALFORMED_TOO_LARGE)
                continue
            body = self._bodies.get(point)
            if body is not None and len(body) + 1 + len(encoded) > limit:
                self._emit(point, out)
                body = None
            self._bodies[point] = _extend(body, b"[" + encoded + b"]")
            self._counts[point] = self._counts.get(point, 0) + 1

    def _limit(self, point: str) -> int:
        """Bytes a body of ``point`` may take: the record's bound less the point's name, twice."""
        limit = self._limits[point] = self.max_bytes - len(orjson.dumps(point)) - len(point.encode())
        return limit

    def _emit(self, point: str, out: list[Group]) -> None:
        count = self._counts.pop(point, 0)
        body = self._bodies.pop(point, None)
        if body is not None and count:
            out.append(Group(point, count, body))
            self.held -= count

    def _skip(self, sample: Any, reason: str) -> None:
        """A sample already taken (held, accepted) turns out malformed while being encoded."""
        self.held -= 1
        self.accepted -= 1
        self._malformed(sample, reason)

    def _make_room(self, incoming: int, out: list[Group]) -> None:
        """Emit the largest groups until ``incoming`` more samples fit under ``gather_max``."""
        excess = self.held + incoming - self.gather_max
        if excess <= 0:
            return
        counts = self._counts
        for point in sorted(counts, key=counts.__getitem__, reverse=True):
            count = counts.pop(point)
            out.append(Group(point, count, self._bodies.pop(point)))
            self.held -= count
            excess -= count
            if excess <= 0:
                break

    def _malformed(self, sample: Any, reason: str = MALFORMED_SHAPE) -> None:
        self.malformed += 1
        self.malformed_by[reason] = self.malformed_by.get(reason, 0) + 1
        self.last_malformed = sample


def _extend(body: bytearray | None, encoded: bytes) -> bytearray:
    """Append an encoded JSON array's elements (``[a,b]`` → ``a,b``) to ``body``."""
    elements = memoryview(encoded)[1:-1]
    if body is None:
        return bytearray(elements)
    body += b","
    body += elements
    return body


def frame(site: str, sync_id: str) -> tuple[bytes, bytes, bytes]:
    """The constant parts of a window's ``ace.samples`` values: ``head + point + mid + body + tail`` is
    the orjson encoding of ``SamplesRecord(site, point, samples, sync_id)``."""
    head = b'{"site":' + orjson.dumps(site) + b',"point":'
    tail = b'],"sync_id":' + orjson.dumps(sync_id) + b"}"
    return head, b',"samples":[', tail
