"""The samples insert as one ClickHouse ``Native`` block, built from runs of one point's rows.

The processor's rows come in runs: a record's valid samples share its site and point. Built per row
(clickhouse-connect's ``insert`` of Python lists), the site's ``LowCardinality`` dictionary takes a
Python step per row and the point column an encode per row; built per run, each is one ``bytes``
repeated ``n`` times, and the times and values one C-level conversion each (``struct``). The runs are
written sorted by (site, point), stably (a point's runs keep their order, so its rows stay in the
order they came): a block already in the table's key order is not sorted again by the engine
(``MergeTreeDataWriterBlocksAlreadySorted``), and the row a key's duplicates keep is unchanged.

The block is ClickHouse's ``Native`` format as an ``INSERT … FORMAT Native`` body reads it (the
same bytes clickhouse-connect's own insert writes for these types; a test compares them), sent with
``raw_insert``: the same statement for the embedded engine and a server.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Final

from streamer.errors import SinkPermanentError
from streamer.sink import tables

# (site, point, epoch-ms times, values): one record's valid rows
Run = tuple[str, str, Sequence[int], Sequence[float]]

COLUMNS: Final = tables.SAMPLE_COLUMNS
_LOW_CARD_VERSION: Final = struct.pack("<Q", 1)  # SharedDictionariesWithAdditionalKeys
_LOW_CARD_FLAGS: Final = (1 << 9) | (1 << 10)  # has additional keys, needs a dictionary update
_site_key = itemgetter(0, 1)


def leb128(value: int) -> bytes:
    """The unsigned LEB128 encoding of ``value`` (lengths and counts in ``Native``)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(0x80 | byte)


def _string(text: str) -> bytes:
    raw = text.encode()
    return leb128(len(raw)) + raw


_HEADERS: Final = tuple(
    _string(name) + _string(kind) for name, kind in zip(COLUMNS, tables.SAMPLE_TYPES, strict=True)
)


def samples_block(runs: Iterable[Run]) -> tuple[bytes, int]:
    """The ``Native`` block of ``runs`` (sorted by site and point, stably) and its row count.

    ``SinkPermanentError`` if a run's columns differ in length or hold what the types cannot take
    (a time outside Int64, a value that is not a number, a name that is not UTF-8).
    """
    ordered = sorted(runs, key=_site_key)
    sites: dict[str, int] = {}
    site_runs: list[tuple[int, int]] = []
    points: list[bytes] = []
    ts: list[int] = []
    values: list[float] = []
    names: dict[str, bytes] = {}
    try:
        for site, point, times, vals in ordered:
            n = len(times)
            if len(vals) != n:
                raise SinkPermanentError(f"run of {site}/{point}: {n} times but {len(vals)} values")
            if not n:
                continue
            site_runs.append((sites.setdefault(site, len(sites)), n))
            name = names.get(point)
            if name is None:
                name = names[point] = _string(point)
            points.append(name * n)
            ts += times
            values += vals
        rows = len(ts)
        # struct's C loop over the concatenated columns: twice as fast as extending arrays run by run
        times_data = struct.pack(f"<{rows}q", *ts)
        values_data = struct.pack(f"<{rows}d", *values)
    except (TypeError, ValueError, OverflowError, UnicodeError, struct.error) as exc:
        raise SinkPermanentError(f"samples the columns cannot take: {exc}") from exc
    parts = [leb128(len(COLUMNS)), leb128(rows)]
    parts += [_HEADERS[0], _LOW_CARD_VERSION, *_site_column(sites, site_runs, rows)]
    parts += [_HEADERS[1], *points, _HEADERS[2], times_data, _HEADERS[3], values_data]
    return b"".join(parts), rows


def runs_of(
    sites: Sequence[str], points: Sequence[str], ts_ms: Sequence[int], values: Sequence[float]
) -> list[Run]:
    """Rows given as columns, as runs: each stretch of consecutive rows of one site and point."""
    runs: list[Run] = []
    start = 0
    for end in range(1, len(ts_ms) + 1):
        if end == len(ts_ms) or sites[end] != sites[start] or points[end] != points[start]:
            runs.append((sites[start], points[start], ts_ms[start:end], values[start:end]))
            start = end
    return runs


def _site_column(sites: dict[str, int], site_runs: list[tuple[int, int]], rows: int) -> list[bytes]:
    """``LowCardinality(String)`` data: the dictionary (each site once), then a key per row."""
    if not rows:
        return []
    width = 0 if len(sites) < 1 << 8 else 1 if len(sites) < 1 << 16 else 2
    code = "BHI"[width]
    dictionary = [_string(site) for site in sites]
    keys = [struct.pack(f"<{code}", key) * n for key, n in site_runs]
    head = struct.pack("<QQ", _LOW_CARD_FLAGS | width, len(sites))
    return [head, *dictionary, struct.pack("<Q", rows), *keys]
