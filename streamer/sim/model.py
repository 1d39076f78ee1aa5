"""Samples as pure, vectorised functions of (seed, site, point, time), and what a window must hold.

Point ``j`` samples at ``phase_ms[j] + k * interval_ms`` for every integer ``k``; everything about a
sample (value kind, value, time format) comes from a 64-bit mix of the point's key and ``k``. A window
``[start, end)`` is enumerated in one of two orders without materialising it: ``grouped`` walks the
points in catalog order, ``interleaved`` walks time cycles and, inside a cycle, points by phase. A
position in either order maps back to ``(j, k)`` in O(1), which is what makes cursors cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamer.sim.catalog import ANALOG, BINARY, MULTISTATE, Catalog, catalog_of
from streamer.sim.checksum import key_checksums
from streamer.sim.config import Gap, Order, SimConfig
from streamer.sim.keyed import mix as _mix

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
BOOL = npt.NDArray[np.bool_]

# Value kinds. FLOAT..INT are valid; the rest are what a sensor bus sends when it has nothing good.
FLOAT, STRING, BOOL_KIND, INT, NULL, NAN, INF, JUNK = range(8)
VALID_KINDS = (FLOAT, STRING, BOOL_KIND, INT)
# Time zone suffixes (Z, +00:00, +02:00, -05:00) by hash, and fraction digits (0, 3, 6) by hash.
SUFFIXES = ("Z", "+00:00", "+02:00", "-05:00")
SUFFIX_SHIFT_MS = np.array([0, 0, 7_200_000, -18_000_000], dtype=np.int64)
_SUFFIX_PICK = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 3], dtype=np.int64)
_FRACTION_PICK = np.array([0] * 10 + [3] * 7 + [6] * 3, dtype=np.int64)
_SINE = np.round(np.sin(np.arange(1440) * (2 * np.pi / 1440)) * 1_000_000).astype(np.int64)
_DAY_MINUTES = 1440


@dataclass(frozen=True)
class Samples:
    """Samples as parallel arrays: point number, time, value kind, value in milli units, time format."""

    j: I64
    t_ms: I64
    kind: I64
    milli: I64
    suffix: I64
    fraction: I64

    def __len__(self) -> int:
        return len(self.j)


def sample_at(config: SimConfig, cat: Catalog, j: I64, k: I64, *, formats: bool = True) -> Samples:
    """The samples number ``k`` of points ``j`` (parallel arrays), exactly as the API serves them.

    ``formats=False`` skips the time formats (left zero), which only the renderer needs.
    """
    t_ms = cat.phase_ms[j] + k * config.interval_ms
    h = _mix(cat.key[j] ^ (k.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)))
    ptype = cat.ptype[j]
    kind = _kinds(config, ptype, (h & np.uint64(0xFFFF)).astype(np.int64))
    draw = (h >> np.uint64(32)).astype(np.int64)
    milli = np.empty(len(j), dtype=np.int64)
    # Each point type has its own signal; computing each only where it applies halves the cost.
    for code, signal in ((ANALOG, _analog), (BINARY, _binary), (MULTISTATE, _multistate)):
        rows = np.flatnonzero(ptype == code)
        if len(rows) == len(j):
            milli = signal(cat, j, t_ms, draw)
        elif len(rows):
            milli[rows] = signal(cat, j[rows], t_ms[rows], draw[rows])
    if not formats:
        zeros = np.zeros(len(j), dtype=np.int64)
        return Samples(j=j, t_ms=t_ms, kind=kind, milli=milli, suffix=zeros, fraction=zeros)
    suffix = _SUFFIX_PICK[((h >> np.uint64(16)) & np.uint64(0xFF)).astype(np.int64) % 10]
    fraction = _FRACTION_PICK[((h >> np.uint64(24)) & np.uint64(0xFF)).astype(np.int64) % 20]
    # A time with milliseconds always shows them: dropping them would change the instant.
    fraction = np.where((fraction == 0) & (t_ms % 1000 != 0), 3, fraction)
    return Samples(j=j, t_ms=t_ms, kind=kind, milli=milli, suffix=suffix, fraction=fraction)


def _kinds(config: SimConfig, ptype: I64, draw: I64) -> I64:
    invalid = round(config.invalid_share * 65536)
    strings = invalid + round(config.string_share * 65536)
    native = np.where(ptype == BINARY, BOOL_KIND, np.where(ptype == MULTISTATE, INT, FLOAT))
    kind = np.where((draw < strings) & (ptype != BINARY), STRING, native)
    bad = NULL + (draw * 4) // max(invalid, 1)  # NULL, NAN, INF, JUNK in equal shares
    return np.where(draw < invalid, bad, kind).astype(np.int64)


def _minute_of_day(cat: Catalog, j: I64, t_ms: I64) -> I64:
    minute: I64 = (t_ms // 60_000 + cat.shift[j]) % _DAY_MINUTES
    return minute


def _analog(cat: Catalog, j: I64, t_ms: I64, draw: I64) -> I64:
    """A daily sine around the point's base, plus noise, on the point's resolution."""
    noise = cat.noise[j]
    wiggle = draw % (2 * noise + 1) - noise
    raw = cat.base[j] + (cat.amp[j] * _SINE[_minute_of_day(cat, j, t_ms)]) // 1_000_000 + wiggle
    res = cat.res[j]
    quantised: I64 = (raw // res) * res
    return quantised


def _binary(cat: Catalog, j: I64, t_ms: I64, draw: I64) -> I64:
    """On for ``base`` minutes a day, with ``noise`` flips per thousand samples."""
    on = (_minute_of_day(cat, j, t_ms) < cat.base[j]) ^ (draw % 1000 < cat.noise[j])
    return on.astype(np.int64) * 1000


def _multistate(cat: Catalog, j: I64, t_ms: I64, draw: I64) -> I64:
    """States 1..base, moving on every hour."""
    state: I64 = (t_ms // 3_600_000 + cat.shift[j]) % np.maximum(cat.base[j], 1) + 1
    return state * 1000


# ----------------------------------------------------------------------------------------- windows
def window_k(config: SimConfig, cat: Catalog, start_ms: int, end_ms: int) -> tuple[I64, I64]:
    """Per point: the first ``k`` inside ``[start, end)`` and how many samples fall inside."""
    interval = config.interval_ms
    k_first = -((cat.phase_ms - start_ms) // interval)  # ceil((start - phase) / interval)
    k_end = -((cat.phase_ms - end_ms) // interval)
    return k_first, np.maximum(k_end - k_first, 0)


def window_total(config: SimConfig, cat: Catalog, start_ms: int, end_ms: int) -> int:
    """Samples in the window before gaps are cut: the length of either order."""
    return int(window_k(config, cat, start_ms, end_ms)[1].sum()) if end_ms > start_ms else 0


def window_slice(
    config: SimConfig, cat: Catalog, start_ms: int, end_ms: int, order: Order, offset: int, count: int
) -> tuple[I64, I64]:
    """``(j, k)`` of positions ``[offset, offset + count)`` of the window in ``order`` (clipped)."""
    total = window_total(config, cat, start_ms, end_ms)
    positions = np.arange(min(offset, total), min(offset + count, total), dtype=np.int64)
    if order == "grouped":
        k_first, counts = window_k(config, cat, start_ms, end_ms)
        ends = np.cumsum(counts)
        j = np.searchsorted(ends, positions, side="right").astype(np.int64)
        return j, k_first[j] + positions - (ends[j] - counts[j])
    interval, size = config.interval_ms, cat.size
    # phase < interval, so cycle c holds exactly one sample of every point, at c * interval + phase.
    c_first = start_ms // interval
    skip = int(np.searchsorted(cat.phase_sorted, start_ms - c_first * interval, side="left"))
    g = positions + skip  # position counted from the first cycle's start; the total bounds the end
    return cat.by_phase[g % size], c_first + g // size


def gap_keep(cat: Catalog, gaps: tuple[Gap, ...], j: I64, t_ms: I64) -> BOOL:
    """False for samples inside one of the site's gaps."""
    keep = np.ones(len(j), dtype=bool)
    for gap in gaps:
        inside = (t_ms >= gap.start_ms) & (t_ms < gap.end_ms)
        if gap.point is not None:
            inside &= j == cat.index.get(gap.point, -1)
        keep &= ~inside
    return keep


def window_samples(
    config: SimConfig,
    site: str,
    start_ms: int,
    end_ms: int,
    order: Order,
    offset: int,
    count: int,
    hidden: tuple[Gap, ...] = (),
) -> Samples:
    """What one page of the window holds: its slice of the order, minus the gaps and the ``hidden``
    spans (late samples that have not arrived yet)."""
    cat = catalog_of(config, site)
    j, k = window_slice(config, cat, start_ms, end_ms, order, offset, count)
    samples = sample_at(config, cat, j, k)
    keep = gap_keep(cat, (*config.gaps_of(site), *hidden), samples.j, samples.t_ms)
    if keep.all():
        return samples
    return Samples(*(getattr(samples, f)[keep] for f in Samples.__dataclass_fields__))


# ---------------------------------------------------------------------------------------- expected
def enabled_mask(cat: Catalog, overrides: Mapping[str, bool] | None = None) -> BOOL:
    """Configured points with collection enabled, after runtime overrides (point name -> enabled)."""
    enabled = cat.default_enabled.copy()
    for name, on in (overrides or {}).items():
        j = cat.index.get(name)
        if j is not None and cat.configured[j]:
            enabled[j] = on
    return enabled


def expected(
    config: SimConfig,
    site: str,
    start_ms: int,
    end_ms: int,
    overrides: Mapping[str, bool] | None = None,
    chunk_samples: int = 1_000_000,
    hidden: tuple[Gap, ...] = (),
) -> dict[str, Any]:
    """What a correct pipeline holds for ``site`` over ``[start_ms, end_ms)``.

    ``all``: every distinct sample the API serves for the window (configured or not);
    ``valid``: those of configured, enabled points whose value is valid (number, numeric string or
    boolean, finite). ``key_checksum`` sums ``crc32(f"{site}/{point}@{ts_ms}")``; ``value_milli_sum``
    sums ``round(value * 1000)``. Computed in time slices of about ``chunk_samples`` samples, so
    memory stays bounded for any window. Late samples count as arrived (the final result) unless
    their span is in ``hidden`` (what the API serves now).
    """
    if site not in config.sites:
        raise ValueError(f"unknown site {site!r}")
    cat = catalog_of(config, site)
    enabled = enabled_mask(cat, overrides)
    span = max(1, chunk_samples // cat.size) * config.interval_ms
    totals = [0] * 5  # all count, all crc, valid count, valid crc, valid milli (exact Python ints)
    for lo in range(start_ms, end_ms, span):
        k_first, counts = window_k(config, cat, lo, min(lo + span, end_ms))
        j = np.repeat(np.arange(cat.size, dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        k = k_first[j] + np.arange(len(j), dtype=np.int64) - starts[j]
        chunk = _chunk_totals(config, cat, enabled, j, k, hidden)
        totals = [a + b for a, b in zip(totals, chunk, strict=True)]
    return {
        "site": site,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "all": {"count": totals[0], "key_checksum": totals[1]},
        "valid": {"count": totals[2], "key_checksum": totals[3], "value_milli_sum": totals[4]},
    }


def _chunk_totals(
    config: SimConfig, cat: Catalog, enabled: BOOL, j: I64, k: I64, hidden: tuple[Gap, ...]
) -> list[int]:
    samples = sample_at(config, cat, j, k, formats=False)
    keep = gap_keep(cat, (*config.gaps_of(cat.site), *hidden), j, samples.t_ms)
    crc = key_checksums(cat.crc_lin[j], samples.t_ms).astype(np.int64)
    valid = keep & enabled[j] & (samples.kind < NULL)  # FLOAT, STRING, BOOL_KIND, INT
    sums = (keep.sum(), crc[keep].sum(), valid.sum(), crc[valid].sum(), samples.milli[valid].sum())
    return [int(x) for x in sums]
