"""An incremental window's overlap publishes only what changed since the previous window read it.

Every incremental window re-reads ``overlap_s`` before its watermark, for samples the API received
late. Publishing the unchanged ones again is harmless (they collapse by key) but costs the broker,
every consumer and the processor as many times the live rate as the overlap holds polls (11 at a
60 s poll and a 600 s overlap: 10 of every 11 samples read). So a worker remembers a fingerprint of
each sample of a site's last incremental window once that window is acknowledged, and the next one
publishes only samples whose fingerprint is new: late uploads and corrected values.

When the fingerprints are used (otherwise everything read is published, as without them):
- only by the next incremental window of the site, the one whose previous watermark
  (``Window.fresh_ms``) is the end of the window they came from: a reset, another worker's windows,
  a failed publish of the state, a restart (nothing remembered) all publish the overlap whole once;
- not after a points refresh published a change: the processor dropped the samples of a point not
  configured yet (``producer.catchup`` fetches them again as ``repair`` windows, never filtered);
- forgotten with the site when it is handed over (``SiteBook.retain``, ``adopt``).
A sample skipped here is in Kafka already, acknowledged by the window the fingerprints came from.

A fingerprint is CPython's 64-bit ``hash`` of (point, time, value): a new sample is mistaken for a
known one only by a 64-bit collision with one of the few thousand fingerprints of its site's window
(~1e-13 a window), not by any two distinct values a building reports. CPython hashes -1 as -2 (its
error code), so the flag ``value == -1`` keeps a correction from -1 to -2 apart; 1, 1.0 and true hash
alike, and the processor stores them alike. A NaN hashes by identity: never skipped (it is rejected
again). Pages that are not all ``Sample`` structs of scalar values (orjson's dicts) are published
whole and not remembered.
Held as an ``array('q')`` between windows, 8 bytes a sample (a set of ints takes ~60), a set only
while the site's window runs.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from streamer.producer.windows import Window


@dataclass(frozen=True, slots=True)
class Seen:
    """The fingerprints of what a site's incremental window ending at ``end_ms`` read (acknowledged)."""

    end_ms: int
    fingerprints: array[int]


def fingerprints(samples: list[Any]) -> list[int] | None:
    """Each ``Sample``'s fingerprint (module docstring); None if the page holds anything else, or a
    value that has no hash (a list or an object where a caller put one: the page is then published
    whole, and the grouper judges the value)."""
    try:
        return [hash((s.name, s.time, s.value, s.value == -1)) for s in samples]
    except (AttributeError, TypeError):
        return None


class OverlapFilter:
    """One incremental window's pass over its pages: drops what ``previous`` holds, and gathers the
    fingerprints of everything read for the next window."""

    def __init__(self, previous: Seen | None, window: Window) -> None:
        usable = previous is not None and window.fresh_ms is not None and previous.end_ms == window.fresh_ms
        self._known: set[int] = set(previous.fingerprints) if usable and previous is not None else set()
        self._read: array[int] = array("q")
        self.unchanged = 0

    def page(self, samples: list[Any]) -> list[Any]:
        """The page's samples not published before (all of them when nothing is known)."""
        prints = fingerprints(samples)
        if prints is None:
            return samples
        self._read.extend(prints)
        known = self._known
        if not known:
            return samples
        kept = [s for s, p in zip(samples, prints, strict=True) if p not in known]
        self.unchanged += len(samples) - len(kept)
        return kept

    def seen(self, end_ms: int) -> Seen:
        """What this window read, for the site's next window once this one is acknowledged."""
        return Seen(end_ms, self._read)
