"""Group a window's samples by point across pages, in bounded memory.

Pages may hold long runs of one point or interleave every point by time. Publishing each page's
fragments would make tiny records when pages interleave; holding the whole window would make memory
unbounded. So samples are gathered per point across pages with two bounds: a point's buffer is emitted as
a record when it reaches ``record_max`` samples, and when the total held would pass ``gather_max`` the
largest buffers are emitted first (they make the best records and free the most). ``finish`` emits the
rest. Every well-formed sample is emitted exactly once, in page order within its point.

This is the hot path of the producer (millions of samples per backfill): the loop is kept flat.
"""

from __future__ import annotations

from typing import Any

from streamer.models import RawValue

Pair = tuple[str, RawValue]
Group = tuple[str, list[Pair]]
"""A point name and up to ``record_max`` of its ``(time, value)`` pairs, in arrival order."""


class PointGrouper:
    """Accumulates pages; each call returns the groups that must be published now."""

    def __init__(self, record_max: int, gather_max: int) -> None:
        if record_max < 1 or gather_max < 1:
            raise ValueError("record_max and gather_max must be positive")
        self.record_max = record_max
        self.gather_max = gather_max
        self.held = 0
        self.peak_held = 0
        self.accepted = 0
        self.malformed = 0
        self.last_malformed: Any = None
        self._buffers: dict[str, list[Pair]] = {}

    def add(self, samples: list[Any]) -> list[Group]:
        """Take one page of raw sample dicts; returns the groups to publish (possibly none)."""
        out: list[Group] = []
        step = self.gather_max
        for offset in range(0, len(samples), step):
            chunk = samples if len(samples) <= step else samples[offset : offset + step]
            self._make_room(len(chunk), out)
            self._take(chunk, out)
        return out

    def finish(self) -> list[Group]:
        """Everything still held: the end of the window."""
        out: list[Group] = []
        for point, buffer in self._buffers.items():
            if buffer:
                out.append((point, buffer))
        self._buffers = {}
        self.held = 0
        return out

    def _take(self, chunk: list[Any], out: list[Group]) -> None:
        buffers = self._buffers
        cap = self.record_max
        taken = 0
        emitted = 0
        str_ = str
        for sample in chunk:
            try:
                name = sample["name"]
                time = sample["time"]
            except (KeyError, TypeError, IndexError):
                self._malformed(sample)
                continue
            if time.__class__ is not str_ or name.__class__ is not str_ or not time or not name:
                self._malformed(sample)
                continue
            buffer = buffers.get(name)
            if buffer is None:
                buffer = buffers[name] = []
            buffer.append((time, sample.get("value")))
            taken += 1
            if len(buffer) >= cap:
                out.append((name, buffer))
                buffers[name] = []
                emitted += len(buffer)
        self.accepted += taken
        self.held += taken - emitted
        # The peak includes the full buffers emitted by this chunk: they were held until now.
        self.peak_held = max(self.peak_held, self.held + emitted)

    def _make_room(self, incoming: int, out: list[Group]) -> None:
        """Emit the largest buffers until ``incoming`` more samples fit under ``gather_max``."""
        excess = self.held + incoming - self.gather_max
        if excess <= 0:
            return
        buffers = self._buffers
        for point in sorted(buffers, key=lambda p: len(buffers[p]), reverse=True):
            buffer = buffers[point]
            if not buffer:
                break
            out.append((point, buffer))
            buffers[point] = []
            self.held -= len(buffer)
            excess -= len(buffer)
            if excess <= 0:
                break
        # Points with empty buffers would otherwise accumulate over a long window.
        for point in [p for p, b in buffers.items() if not b]:
            del buffers[point]

    def _malformed(self, sample: Any) -> None:
        self.malformed += 1
        self.last_malformed = sample
