"""Samples to a timeseries page body without a Python object per sample.

A page is one (samples x width) byte matrix: each row is one sample's JSON object, assembled column
block by column block from lookup tables (quoted point names, the date and second of each time, the
fraction and zone suffix, 4-digit groups of the values) gathered as fixed-width elements. Fields are
padded with spaces *between* JSON tokens, which JSON allows, so rows have a fixed width and need no
compaction. Measured: ~12 ms for 50,000 samples against ~45 ms for orjson over dicts; the body is
about a third larger than compact JSON.

``iso_time`` and ``raw_value`` are the scalar reference of what each sample says; tests hold the fast
path to them.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from streamer.sim.catalog import MULTISTATE, Catalog
from streamer.sim.model import (
    BOOL_KIND,
    FLOAT,
    INF,
    INT,
    JUNK,
    NAN,
    NULL,
    STRING,
    SUFFIX_SHIFT_MS,
    SUFFIXES,
    Samples,
)
from streamer.times import ms_to_iso

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
_SP, _QUOTE = ord(" "), ord('"')
_TIME_HEAD_W, _TIME_TAIL_W = 20, 16  # '"2024-01-01T12:00:00' + '.250000+02:00"' and padding
_TIME_W = _TIME_HEAD_W + _TIME_TAIL_W
_VALUE_W = 18  # 2 for quote and sign of the longest numbers, 8 integer digits, 8 for fraction and quote
_INT_DIGITS = 8
_SPACES64 = np.frombuffer(b" " * 8, dtype=np.uint64)[0]
_THRESHOLDS = 10 ** np.arange(1, _INT_DIGITS, dtype=np.int64)
_CONSTANTS = {NULL: b"null", NAN: b'"nan"', INF: b'"inf"', JUNK: b'"n/a"'}
_HEAD = b'{"point_samples":['
_SCALAR_CONSTANTS: dict[int, Any] = {NULL: None, NAN: "nan", INF: "inf", JUNK: "n/a"}


def _row(text: bytes, width: int) -> list[int]:
    return list(text.ljust(width))


def _words(texts: list[bytes], width: int) -> npt.NDArray[np.void]:
    """Space-padded texts as one fixed-width element each: gathering those is a memcpy per row."""
    table = np.array([_row(t, width) for t in texts], dtype=np.uint8)
    return table.view(f"V{width}").ravel()


@lru_cache(maxsize=1)
def _tail_table() -> npt.NDArray[np.void]:
    """Fraction, zone suffix and closing quote, by (fraction // 3, ms, suffix)."""
    texts = []
    for width in (0, 3, 6):
        for ms in range(1000):
            fraction = f".{ms:03d}000"[: width + 1] if width else ""
            texts += [f'{fraction}{suffix}"'.encode() for suffix in SUFFIXES]
    return _words(texts, _TIME_TAIL_W)


@lru_cache(maxsize=8)
def _head_table(first_day: int, last_day: int) -> npt.NDArray[np.void]:
    """'"YYYY-MM-DDTHH:MM:SS' for every second of the days ``first_day..last_day``."""
    epoch = date(1970, 1, 1)
    days = [(epoch + timedelta(days=d)).isoformat().encode() for d in range(first_day, last_day + 1)]
    sec = np.arange(86_400)
    clock = np.full((86_400, 9), ord(":"), dtype=np.uint8)
    clock[:, 0] = ord("T")
    for col, part in ((1, sec // 3600), (4, sec // 60 % 60), (7, sec % 60)):
        clock[:, col], clock[:, col + 1] = 48 + part // 10, 48 + part % 10
    table = np.empty((len(days), 86_400, _TIME_HEAD_W), dtype=np.uint8)
    table[:, :, 0] = _QUOTE
    table[:, :, 1:11] = np.array([list(d) for d in days], dtype=np.uint8)[:, None, :]
    table[:, :, 11:20] = clock[None, :, :]
    return table.reshape(-1, _TIME_HEAD_W).view(f"V{_TIME_HEAD_W}").ravel()


def time_block(t_ms: I64, suffix: I64, fraction: I64) -> U8:
    """Quoted ISO 8601 times, one row each, space padded: each in its own zone suffix and fraction."""
    n = len(t_ms)
    local = t_ms + SUFFIX_SHIFT_MS[suffix]
    seconds = local // 1000
    first_day = int(seconds.min()) // 86_400
    heads = _head_table(first_day, int(seconds.max()) // 86_400)[seconds - first_day * 86_400]
    tails = _tail_table()[((fraction // 3) * 1000 + local % 1000) * 4 + suffix]
    out = np.empty((n, _TIME_W), dtype=np.uint8)
    out[:, :_TIME_HEAD_W] = heads.view(np.uint8).reshape(n, _TIME_HEAD_W)
    out[:, _TIME_HEAD_W:] = tails.view(np.uint8).reshape(n, _TIME_TAIL_W)
    return out


def _as_u64(texts: list[bytes]) -> npt.NDArray[np.uint64]:
    return np.frombuffer(b"".join(t.ljust(8) for t in texts), dtype=np.uint64)


@lru_cache(maxsize=1)
def _number_tables() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64], I64]:
    """4-digit groups, masks keeping the last n of 8 bytes, and '.f'/'.ff'/'.fff' (repr's form) by ms."""
    quads = np.frombuffer(b"".join(f"{i:04d}".encode() for i in range(10_000)), dtype=np.uint32)
    keep = _as_u64([b"\0" * (8 - n) + b"\xff" * n for n in range(9)])
    texts = [f"{m / 1000:.3f}"[1:].rstrip("0") for m in range(1000)]
    texts = [t if len(t) > 1 else ".0" for t in texts]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    return quads.astype(np.uint64), keep, _as_u64([t.encode() for t in texts]), lengths


def value_block(kind: I64, milli: I64, integral: npt.NDArray[np.bool_]) -> U8:
    """JSON text of each value: number, quoted numeric string, boolean, null or quoted junk.

    Columns 2..9 hold the integer digits right-aligned, 10..17 the fraction; sign and quotes land at
    per-row columns by flat index.
    """
    if len(milli) and int(np.abs(milli).max()) >= 10 ** (_INT_DIGITS + 3):
        raise ValueError("simulated values must stay below 10**8")
    quads, keep, fractions, lengths = _number_tables()
    n = len(kind)
    whole, frac = np.divmod(np.abs(milli), 1000)
    ndig = 1 + np.searchsorted(_THRESHOLDS, whole, side="right")
    digits = quads[whole // 10_000] | (quads[whole % 10_000] << np.uint64(32))
    mask = keep[ndig]
    words = np.empty((n, 2), dtype=np.uint64)
    words[:, 0] = (digits & mask) | (_SPACES64 & ~mask)
    words[:, 1] = np.where(integral, _SPACES64, fractions[frac])
    out = np.empty((n, _VALUE_W), dtype=np.uint8)
    out[:, :2] = _SP
    out[:, 2:] = words.view(np.uint8).reshape(n, 16)
    flat = out.reshape(-1)
    first = np.arange(n) * _VALUE_W + 10 - ndig  # flat index of the first digit
    neg = np.flatnonzero(milli < 0)
    flat[first[neg] - 1] = ord("-")
    first[neg] -= 1
    quoted = np.flatnonzero(kind == STRING)
    flat[first[quoted] - 1] = _QUOTE
    flat[quoted * _VALUE_W + 10 + np.where(integral[quoted], 0, lengths[frac[quoted]])] = _QUOTE
    for k, text in _CONSTANTS.items():
        out[kind == k] = _row(text, _VALUE_W)
    out[(kind == BOOL_KIND) & (milli != 0)] = _row(b"true", _VALUE_W)
    out[(kind == BOOL_KIND) & (milli == 0)] = _row(b"false", _VALUE_W)
    return out


@lru_cache(maxsize=64)
def _name_table(cat: Catalog) -> tuple[U8, I64]:
    quoted = [orjson.dumps(n) for n in cat.names]
    width = max(len(q) for q in quoted)
    table = np.array([_row(q, width) for q in quoted], dtype=np.uint8)
    return table, np.array([len(q) for q in quoted], dtype=np.int64)


def timeseries_body(
    cat: Catalog, samples: Samples, next_cursor: str | None, has_more: bool, *, omit_cursor: bool = False
) -> bytearray:
    """The JSON body of one timeseries page, built in place in the buffer that is returned."""
    tail: dict[str, Any] = {"has_more": has_more}
    if not omit_cursor:
        tail["next_cursor"] = next_cursor
    tail_json = b"]," + orjson.dumps(tail)[1:]
    if len(samples) == 0:
        return bytearray(_HEAD + tail_json)
    names, name_len = _name_table(cat)
    name_w = int(name_len[samples.j].max())
    parts: list[tuple[bytes | U8, int]] = [
        (b'{"name":', 8),
        (names[samples.j, :name_w], name_w),
        (b',"time":', 8),
        (time_block(samples.t_ms, samples.suffix, samples.fraction), _TIME_W),
        (b',"value":', 9),
        (value_block(samples.kind, samples.milli, cat.ptype[samples.j] == MULTISTATE), _VALUE_W),
        (b"},", 2),
    ]
    width = sum(w for _, w in parts)
    size = len(samples) * width
    # One buffer for the whole body: every extra multi-megabyte copy costs more in page faults
    # than the formatting itself.
    body = bytearray(len(_HEAD) + size + len(tail_json))
    buffer = np.frombuffer(body, dtype=np.uint8)
    buffer[: len(_HEAD)] = np.frombuffer(_HEAD, dtype=np.uint8)
    buffer[len(_HEAD) + size :] = np.frombuffer(tail_json, dtype=np.uint8)
    rows = buffer[len(_HEAD) : len(_HEAD) + size].reshape(len(samples), width)
    col = 0
    for block, w in parts:
        rows[:, col : col + w] = np.frombuffer(block, dtype=np.uint8) if isinstance(block, bytes) else block
        col += w
    rows[-1, -1] = _SP  # no comma after the last sample
    return body


def paged_body(items: list[Any], page: int, per_page: int, total_key: str = "total") -> bytes:
    """A list envelope: ``{"page", "pages", "per_page", total_key, "items"}`` for 1-based ``page``."""
    pages = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page] if page >= 1 else []
    return orjson.dumps(
        {"page": page, "pages": pages, "per_page": per_page, total_key: len(items), "items": chunk}
    )


# ------------------------------------------------------------------------------- scalar reference
def iso_time(t_ms: int, suffix: int, fraction: int) -> str:
    """One sample's time as the API writes it (reference for ``time_block``)."""
    return ms_to_iso(t_ms + int(SUFFIX_SHIFT_MS[suffix]), digits=fraction, suffix=SUFFIXES[suffix])


def raw_value(kind: int, milli: int, integral: bool) -> Any:
    """One sample's value as the API sends it (reference for ``value_block``)."""
    if kind == FLOAT:
        return milli / 1000
    if kind == STRING:
        return str(milli // 1000) if integral else repr(milli / 1000)
    if kind == BOOL_KIND:
        return milli != 0
    if kind == INT:
        return milli // 1000
    return _SCALAR_CONSTANTS[kind]
