"""Parsing of query inputs (times, point lists, resolutions, tag filters) into checked values.

Pure functions: every bad value raises ``QueryError`` whose message says what to send instead, so the
HTTP API answers 400 and the CLI prints one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from streamer import times
from streamer.errors import QueryError

Resolution = Literal["raw", "5m", "1h"]
RESOLUTIONS: Final[tuple[str, ...]] = ("raw", "5m", "1h", "auto")
BUCKET_MS: Final[dict[str, int]] = {"5m": 300_000, "1h": 3_600_000}
FORMATS: Final[tuple[str, ...]] = ("json", "csv")
DEFAULT_SPAN_MS: Final = 86_400_000
MAX_POINTS: Final = 1_000
# DateTime64(3) holds 1900..2299; the API keeps to the unsigned epoch and a round upper bound.
MIN_MS: Final = 0
MAX_MS: Final = 7_258_118_400_000  # 2200-01-01T00:00:00Z

_RELATIVE = re.compile(r"^-(\d{1,9})(ms|s|m|h|d|w)$")
_UNIT_MS: Final = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
TIME_HELP: Final = "epoch milliseconds, ISO 8601 (2024-01-01T00:00:00Z), 'now' or relative like -6h, -7d"


@dataclass(frozen=True)
class TimeRange:
    """Half-open ``[start_ms, end_ms)``: a sample at exactly ``end_ms`` belongs to the next range."""

    start_ms: int
    end_ms: int
    warnings: tuple[str, ...] = field(default=(), compare=False)  # accepted, but likely a mistake

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms


def parse_time(value: str, name: str, now_ms: int) -> int:
    """One instant as epoch ms from ``value`` (see ``TIME_HELP``); ``name`` is the parameter's name."""
    text = value.strip()
    if not text:
        raise QueryError(f"{name} is empty: send {TIME_HELP}")
    if text == "now":
        return now_ms
    relative = _RELATIVE.match(text)
    if relative:
        ms = now_ms - int(relative.group(1)) * _UNIT_MS[relative.group(2)]
    else:
        try:
            ms = times.to_ms(text)
        except times.TimeRangeError:
            ms = MIN_MS - 1  # refused below, with the API's narrower range
        except ValueError:
            raise QueryError(f"{name}={text!r} is not a time: send {TIME_HELP}") from None
    if not MIN_MS <= ms <= MAX_MS:
        raise QueryError(f"{name}={value!r} is outside 1970-01-01..2200-01-01: send {TIME_HELP}")
    return ms


def parse_range(start: str | None, end: str | None, now_ms: int) -> TimeRange:
    """``[start, end)``; ``end`` defaults to now, ``start`` to one day before ``end``.

    Accepted, but named in ``warnings``: digits that look like epoch seconds (``times.seconds_warning``).
    """
    end_ms = parse_time(end, "end", now_ms) if end is not None else now_ms
    start_ms = (
        parse_time(start, "start", now_ms) if start is not None else max(MIN_MS, end_ms - DEFAULT_SPAN_MS)
    )
    if start_ms >= end_ms:
        raise QueryError(f"start ({start_ms}) must be before end ({end_ms}): swap them or widen the range")
    warnings = tuple(
        f"{name}={warning}"
        for name, value in (("start", start), ("end", end))
        if value is not None and (warning := times.seconds_warning(value))
    )
    return TimeRange(start_ms, end_ms, warnings)


def parse_points(values: Iterable[str], *, required: bool) -> list[str]:
    """Point names from comma-separated values (the parameter may repeat); order kept, duplicates dropped."""
    names: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                names[part.strip()] = None
    if required and not names:
        raise QueryError("points is missing: send points=name1,name2 (GET /api/v1/sites/{site}/points)")
    if len(names) > MAX_POINTS:
        raise QueryError(f"{len(names)} points asked, at most {MAX_POINTS}: split the request")
    return list(names)


def parse_resolution(value: str | None) -> str:
    """``raw``, ``5m``, ``1h`` or ``auto`` (the default)."""
    if value is None or value == "":
        return "auto"
    if value not in RESOLUTIONS:
        raise QueryError(f"resolution={value!r} is not one of {', '.join(RESOLUTIONS)}")
    return value


def parse_format(value: str | None) -> str:
    if value is None or value == "":
        return "json"
    if value not in FORMATS:
        raise QueryError(f"format={value!r} is not one of {', '.join(FORMATS)}")
    return value


def parse_kv_tags(values: Iterable[str]) -> dict[str, str]:
    """``kv=unit:degF`` filters (repeatable) into ``{"unit": "degF"}``."""
    tags: dict[str, str] = {}
    for value in values:
        key, sep, tag_value = value.partition(":")
        if not sep or not key.strip():
            raise QueryError(f"kv={value!r} is not key:value (e.g. kv=unit:degF)")
        tags[key.strip()] = tag_value.strip()
    return tags


def parse_marker_tags(values: Iterable[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


# Collect intervals that may pass between two stored samples before it is a gap: a rejected sample
# (null, NaN, junk) leaves a single hole, a span of 2 intervals, which is not a gap; two missing
# samples in a row (3 intervals) are. The half interval absorbs the jitter of real sample times.
GAP_TOLERANCE = 2.5


def parse_tolerance(value: str | None) -> float:
    """How many collect intervals may pass between two samples before it counts as a gap."""
    if value is None or value == "":
        return GAP_TOLERANCE
    try:
        tolerance = float(value)
    except ValueError:
        raise QueryError(f"tolerance={value!r} is not a number: send e.g. tolerance=2.5") from None
    if not 1.0 <= tolerance <= 1000.0:
        raise QueryError(f"tolerance={value!r} must be between 1 and 1000")
    return tolerance


def parse_site(value: str) -> str:
    site = value.strip()
    if not site or len(site) > 256:
        raise QueryError("site must be a non-empty name of at most 256 characters (GET /api/v1/sites)")
    return site


def bucket_count(time_range: TimeRange, bucket_ms: int) -> int:
    """Buckets that overlap the range: the one it starts inside, up to the last starting before its end."""
    first = time_range.start_ms - time_range.start_ms % bucket_ms
    return math.ceil((time_range.end_ms - first) / bucket_ms)


def choose_resolution(requested: str, estimates: dict[str, int], budget: int) -> str:
    """The resolution to serve: the requested one if its row estimate fits ``budget``; for ``auto``
    the finest that fits. A request that cannot fit raises ``QueryError`` naming what to change."""
    candidates = ("raw", "5m", "1h") if requested == "auto" else (requested,)
    for resolution in candidates:
        if estimates[resolution] <= budget:
            return resolution
    last = candidates[-1]
    hints = {
        "raw": "narrow start/end, ask fewer points, or use resolution=5m, 1h or auto",
        "5m": "narrow start/end, ask fewer points, or use resolution=1h or auto",
        "1h": "narrow start/end or ask fewer points (even hourly rollups are too many)",
    }
    raise QueryError(
        f"resolution={last} would return ~{estimates[last]} rows, more than the row budget {budget} "
        f"(setting STREAMER_API_ROW_BUDGET): {hints[last]}"
    )
