"""One site's configured points (name → collect_enabled) in ~35 bytes a point instead of ~110.

A dict of str costs a string object (49 bytes + the name) and a slot (~30 bytes) per point, and every
worker holds every point of every site: a million points were 112 MB of the processor's heap. Here
the settled points are one sorted ``bytes`` of the names (UTF-8), an ``array`` of their end offsets
and a ``bytearray`` of their flags, searched by bisection; changes since the last compaction sit in a
small dict (a removal is ``None`` there) that is merged in once it outgrows an eighth of the settled
part, so an update costs O(log n) amortised and a lookup a dict probe plus ~log2(n) slice compares.
"""

from __future__ import annotations

from array import array

_MIN_RECENT = 64  # changes held before a compaction, at the least


class SitePoints:
    """A mapping name → enabled: ``get``, ``set``, ``remove``, ``len``; see the module docstring."""

    __slots__ = ("_ends", "_flags", "_names", "_recent", "_size")

    def __init__(self) -> None:
        self._names = b""
        self._ends = array("I")
        self._flags = bytearray()
        self._recent: dict[str, bool | None] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, name: str) -> bool | None:
        """collect_enabled of ``name``, or None if the site has no such point."""
        recent = self._recent
        if name in recent:
            return recent[name]
        index = self._find(name.encode("utf-8", "surrogatepass"))
        return None if index < 0 else bool(self._flags[index])

    def set(self, name: str, enabled: bool) -> None:
        if self.get(name) is None:
            self._size += 1
        self._recent[name] = enabled
        self._maybe_compact()

    def remove(self, name: str) -> bool:
        """Forget ``name``; False if it was not there."""
        if self.get(name) is None:
            return False
        self._size -= 1
        if self._find(name.encode("utf-8", "surrogatepass")) >= 0:
            self._recent[name] = None  # settled: masked until the next compaction
        else:
            del self._recent[name]
        self._maybe_compact()
        return True

    def _find(self, key: bytes) -> int:
        names, ends = self._names, self._ends
        lo, hi = 0, len(ends)
        while lo < hi:
            mid = (lo + hi) // 2
            probe = names[ends[mid - 1] if mid else 0 : ends[mid]]
            if probe < key:
                lo = mid + 1
            elif probe > key:
                hi = mid
            else:
                return mid
        return -1

    def _maybe_compact(self) -> None:
        if len(self._recent) > max(_MIN_RECENT, len(self._ends) // 8):
            self._compact()

    def _compact(self) -> None:
        recent = {name.encode("utf-8", "surrogatepass"): flag for name, flag in self._recent.items()}
        names, ends, flags = self._names, self._ends, self._flags
        merged: dict[bytes, bool] = {}
        start = 0
        for i, end in enumerate(ends):
            merged[names[start:end]] = bool(flags[i])
            start = end
        for key, flag in recent.items():
            if flag is None:
                merged.pop(key, None)
            else:
                merged[key] = flag
        keys = sorted(merged)
        self._names = b"".join(keys)
        self._ends = array("I")
        total = 0
        for key in keys:
            total += len(key)
            self._ends.append(total)
        self._flags = bytearray(merged[key] for key in keys)
        self._recent = {}
