"""The samples insert's Native block: clickhouse-connect's bytes, sorted runs, bad rows refused."""

from __future__ import annotations

import random

import pytest
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from streamer.errors import SinkPermanentError
from streamer.sink import tables
from streamer.sink.native import COLUMNS, Run, leb128, runs_of, samples_block


def _client_bytes(runs: list[Run]) -> bytes:
    """What clickhouse-connect's own insert writes for the same rows, as columns (one block)."""
    sites: list[str] = []
    points: list[str] = []
    ts: list[int] = []
    values: list[float] = []
    for site, point, times, vals in runs:
        sites += [site] * len(times)
        points += [point] * len(times)
        ts += times
        values += vals
    types = [get_from_name(name) for name in tables.SAMPLE_TYPES]
    data = [sites, points, ts, values]
    context = InsertContext("t", COLUMNS, types, data, column_oriented=True, block_size=len(ts) or 1)
    body = b"".join(NativeTransform.build_insert(context))
    return body[body.index(b"\n") + 1 :]  # less the INSERT statement it sends ahead of the data


@pytest.mark.parametrize("site_count", [1, 3, 300, 70_000])
def test_the_block_is_what_clickhouse_connect_writes_for_the_sorted_rows(site_count: int) -> None:
    """Per run, the block holds the bytes clickhouse-connect writes row by row (key widths 1, 2, 4)."""
    rng = random.Random(site_count)
    runs: list[Run] = []
    for i in range(max(2_000, site_count)):
        n = rng.randrange(0, 4)
        site = f"site-{i % site_count}"
        point = rng.choice(["a/b", "ü/€", "", "x" * 300])
        runs.append((site, point, [rng.randrange(-(2**62), 2**62) for _ in range(n)], [rng.random()] * n))
    block, rows = samples_block(runs)
    ordered = sorted(runs, key=lambda run: (run[0], run[1]))
    assert rows == sum(len(run[2]) for run in runs)
    assert block == _client_bytes(ordered)


def test_runs_are_sorted_by_site_and_point_keeping_a_points_runs_in_order() -> None:
    """Runs go out sorted by (site, point); one point's runs keep their order (its rows stay in order)."""
    runs: list[Run] = [("s", "b", [3], [1.0]), ("s", "a", [5], [2.0]), ("r", "z", [1], [3.0])]
    runs.append(("s", "a", [4], [4.0]))  # later, older sample: stays after the first run of s/a
    block, _ = samples_block(runs)
    expected = [runs[2], runs[1], runs[3], runs[0]]
    assert block == _client_bytes(expected)


def test_rows_the_columns_cannot_take_are_permanent_errors() -> None:
    """A value that is no number, a time beyond Int64, a name not UTF-8, ragged columns: refused."""
    bad: list[Run] = [
        ("s", "p", [1], ["abc"]),  # type: ignore[list-item]
        ("s", "p", [2**63], [1.0]),
        ("s", "p", [-1, 2**64], [1.0, 2.0]),
        ("s", "p", [1.5], [1.0]),  # type: ignore[list-item]
        ("s", "p", [1], [None]),  # type: ignore[list-item]
        ("s", "p", [1], ["1.5"]),  # type: ignore[list-item]
        ("s", "\ud800", [1], [1.0]),
        ("s", "p", [1, 2], [1.0]),
    ]
    for run in bad:
        with pytest.raises(SinkPermanentError, match=r"cannot take|times but"):
            samples_block([("s", "ok", [0], [0.0]), run])


def test_runs_of_cuts_columns_at_every_change_of_site_or_point() -> None:
    """Consecutive rows of one (site, point) form a run; a point seen again later starts another."""
    sites = ["s", "s", "s", "t", "s"]
    points = ["a", "a", "b", "b", "a"]
    assert runs_of(sites, points, [1, 2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0]) == [
        ("s", "a", [1, 2], [1.0, 2.0]),
        ("s", "b", [3], [3.0]),
        ("t", "b", [4], [4.0]),
        ("s", "a", [5], [5.0]),
    ]
    assert runs_of([], [], [], []) == []


def test_leb128_matches_the_varint_clickhouse_reads() -> None:
    """Lengths and counts: 7 bits a byte, low bits first, the high bit set on all but the last."""
    assert [leb128(n) for n in (0, 1, 127, 128, 300, 2**21)] == [
        b"\x00",
        b"\x01",
        b"\x7f",
        b"\x80\x01",
        b"\xac\x02",
        b"\x80\x80\x80\x01",
    ]
