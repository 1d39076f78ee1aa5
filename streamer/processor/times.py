"""Sample times: ISO 8601 strings to epoch milliseconds, and the memo that makes it cheap.

Time strings repeat a lot (pages interleave every point at the same instants), so parsed times are
cached; ``normalise`` reads the memo's maps directly on its fast path.
"""

from __future__ import annotations

from datetime import UTC, datetime

from streamer.errors import RecordDecodeError

# DateTime64(3) holds 1900-01-01 .. 2299-12-31; outside it ClickHouse would clamp silently.
MIN_MS = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp()) * 1000
MAX_MS = int(datetime(2300, 1, 1, tzinfo=UTC).timestamp()) * 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAD_TIME = _BAD = -(2**62)  # what TimeCache.lookup answers for an invalid time string


def parse_time_ms(text: str) -> int | None:
    """ISO 8601 (``Z`` or an offset, any fraction; naive means UTC) → epoch ms, or None if invalid.

    Sub-millisecond digits are truncated. Integer arithmetic, so no float rounding can move a sample
    into the neighbouring millisecond.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - _EPOCH
    except OverflowError:
        return None
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return ms if MIN_MS <= ms < MAX_MS else None


class TimeCache:
    """Memo of ``parse_time_ms`` that also pays off when whole strings rarely repeat.

    A time ``YYYY-MM-DDTHH:MM:SS[.fff][zone]`` is split at the seconds' colon into a head (the minute,
    naive) and a tail (seconds, fraction, zone). Both repeat a lot even when whole strings do not
    (points sample at their own phases, in several zones and fraction widths), and the instant is
    their sum: ``ms(head as UTC) + ms("1970-01-01T00:00" + tail)`` (the tail's zone offset comes out
    with the right sign). Other shapes go through the full parser, memoised as whole strings. Each
    map is cleared wholesale when full (cheap, and rare).
    """

    __slots__ = ("_full", "_heads", "_tails", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._heads: dict[str, int] = {}
        self._tails: dict[str, int] = {}
        self._full: dict[str, int] = {}
        self.max_entries = max_entries

    def lookup(self, text: str) -> int:
        """Epoch ms of ``text``; ``_BAD`` if invalid. Raises ``RecordDecodeError`` if not a string."""
        if text.__class__ is not str:
            raise RecordDecodeError(f"sample time is {type(text).__name__}, not a string")
        head = self._heads.get(text[:16])
        if head is None:
            head = self._head(text[:16])
        if head != _BAD and text[16:17] == ":":
            tail = self._tails.get(text[16:])
            if tail is None:
                tail = self._tail(text[16:])
            if tail == _BAD:
                return _BAD
            ms = head + tail
            return ms if MIN_MS <= ms < MAX_MS else _BAD
        return self._whole(text)

    def _head(self, head: str) -> int:
        ms = _BAD
        if len(head) == 16 and head[4] == "-" and head[7] == "-" and head[10] in "T " and head[13] == ":":
            try:
                moment = datetime.fromisoformat(head)
            except ValueError:
                pass
            else:
                delta = moment.replace(tzinfo=UTC) - _EPOCH
                ms = (delta.days * 86_400 + delta.seconds) * 1000
        return _remember(self._heads, head, ms, self.max_entries)

    def _tail(self, tail: str) -> int:
        try:
            moment = datetime.fromisoformat("1970-01-01T00:00" + tail)
        except ValueError:
            return _remember(self._tails, tail, _BAD, self.max_entries)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        return _remember(self._tails, tail, ms, self.max_entries)

    def _whole(self, text: str) -> int:
        cached = self._full.get(text)
        if cached is not None:
            return cached
        ms = parse_time_ms(text)
        return _remember(self._full, text, _BAD if ms is None else ms, self.max_entries)


def _remember(memo: dict[str, int], key: str, value: int, limit: int) -> int:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
