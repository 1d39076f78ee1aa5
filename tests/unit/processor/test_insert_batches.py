"""Loading: transient errors retried with capped backoff, permanent ones bisected to poison records."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.errors import SinkPermanentError, SinkTransientError
from streamer.processor.batch_items import Item, Part
from streamer.processor.insert_batches import batch_token, bisect_load, retry_transient


@dataclass(frozen=True)
class Src:
    source_topic: str
    source_partition: int
    source_offset: int
    source_crc: int = 0
    source_rows: int = -1


def test_batch_token_is_deterministic_and_depends_on_offsets() -> None:
    """The same records give the same token in any order; other offsets or kinds give another."""
    a = [Src("t", 0, 5), Src("t", 0, 6), Src("t", 1, 9), Src("t", 0, 8)]
    assert batch_token("samples", a) == batch_token("samples", list(reversed(a)))
    assert batch_token("samples", a) != batch_token("samples", a[:3])
    assert batch_token("samples", a) != batch_token("sync_runs", a)
    assert batch_token("samples", [Src("t", 0, 1), Src("t", 0, 3)]) != batch_token(
        "samples", [Src("t", 0, 1), Src("t", 0, 2), Src("t", 0, 3)]
    )


def _reference_token(kind: str, parts: Sequence[Src]) -> str:
    """The token as first written, by other means than ``batch_token``'s (a crc chained one record at a
    time, runs found by offset minus index): tokens stay what they were, so a batch retried across an
    upgrade is still dropped by its token."""
    chunks: list[str] = []
    for topic, partition in sorted({(p.source_topic, p.source_partition) for p in parts}):
        mine = sorted(
            (p.source_offset, p.source_crc, p.source_rows)
            for p in parts
            if (p.source_topic, p.source_partition) == (topic, partition)
        )
        runs = []
        for _, run in groupby(enumerate(mine), key=lambda item: item[1][0] - item[0]):
            offsets = [source[0] for _, source in run]
            runs.append(f"{offsets[0]}-{offsets[-1]}")
        crc = 0
        for _, record_crc, rows in mine:
            crc = zlib.crc32(struct.pack("<Iq", record_crc, rows), crc)
        chunks.append(f"{topic}:{partition}:{'+'.join(runs)}:{crc:08x}")
    return hashlib.sha1(f"{kind}|{','.join(chunks)}".encode()).hexdigest()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["t", "u"]),
            st.integers(0, 2),
            st.integers(0, 40),
            st.integers(0, 2**32 - 1),
            st.integers(-1, 2**40),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda s: s[:3],
    )
)
def test_batch_token_is_the_token_it_always_was(sources: list[tuple[str, int, int, int, int]]) -> None:
    """Any sources (gaps, runs, several partitions, rows or -1) give the token the first version gave."""
    parts = [Src(*source) for source in sources]
    assert batch_token("samples", parts) == _reference_token("samples", parts)


def test_batch_token_depends_on_content_and_rows_not_only_offsets() -> None:
    """Other records at the same offsets (a recreated topic), or a record that gave other rows, make
    another token; the same records with the same rows make the same one (a retry still dedupes)."""
    a = [Src("t", 0, 0, 111, 5), Src("t", 0, 1, 222, 5)]
    same = [Src("t", 0, 1, 222, 5), Src("t", 0, 0, 111, 5)]
    recreated = [Src("t", 0, 0, 333, 5), Src("t", 0, 1, 222, 5)]
    fewer_rows = [Src("t", 0, 0, 111, 4), Src("t", 0, 1, 222, 5)]
    assert batch_token("samples", a) == batch_token("samples", same)
    assert batch_token("samples", a) != batch_token("samples", recreated)
    assert batch_token("samples", a) != batch_token("samples", fewer_rows)


def test_items_and_parts_fingerprint_their_record_value() -> None:
    """An item's crc is its value's; its parts carry it and their own row count into the token."""
    first = Item(None, "t", 0, 7, b"k", b'{"a":1}', {})
    other = Item(None, "t", 0, 7, b"k", b'{"a":2}', {})
    assert first.source_crc == zlib.crc32(b'{"a":1}') != other.source_crc
    part = Part(first, "s", "p", [1, 2], [1.0, 2.0])
    assert (part.source_crc, part.source_rows) == (first.source_crc, 2)
    assert batch_token("samples", [part]) != batch_token(
        "samples", [Part(other, "s", "p", [1, 2], [1.0, 2.0])]
    )


async def test_retry_transient_backs_off_doubling_up_to_the_cap() -> None:
    """SinkTransientError is retried with doubling sleeps capped at max_backoff_s, then succeeds."""
    sleeps: list[float] = []
    calls = 0

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 7:
            raise SinkTransientError("down")
        return "ok"

    assert await retry_transient(flaky, max_backoff_s=0.5, what="x", sleep=sleep) == "ok"
    assert calls == 8
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


async def test_retry_transient_lets_permanent_errors_through() -> None:
    """A permanent error is not retried."""
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise SinkPermanentError("bad rows")

    with pytest.raises(SinkPermanentError):
        await retry_transient(refused, max_backoff_s=1.0, what="x")
    assert calls == 1


async def test_bisect_isolates_exactly_the_poison_parts() -> None:
    """Bisecting inserts every good part exactly once and returns only the poison ones."""
    parts = list(range(13))
    poison = {3, 4, 11}
    inserted: list[int] = []

    async def insert(chunk: Sequence[int]) -> None:
        if poison & set(chunk):
            raise SinkPermanentError(f"poison in {list(chunk)}")
        inserted.extend(chunk)

    failed = await bisect_load(parts, insert)
    assert sorted(p for p, _ in failed) == sorted(poison)
    assert sorted(inserted) == [p for p in parts if p not in poison]
    assert all(isinstance(exc, SinkPermanentError) for _, exc in failed)


async def test_bisect_of_a_clean_batch_is_one_insert() -> None:
    """A batch without poison is inserted in a single call."""
    calls: list[list[int]] = []

    async def insert(chunk: Sequence[int]) -> None:
        calls.append(list(chunk))

    assert await bisect_load([1, 2, 3], insert) == []
    assert calls == [[1, 2, 3]]
