"""The keys a recompute of the hourly rollups reads: exactly the batch's (site, point, hour), by hour."""

from __future__ import annotations

from streamer.sink import rollups
from streamer.sink.params import StringArray

H0 = 1_704_067_200  # 2024-01-01T00:00:00Z, epoch s


def test_a_batch_mixing_hours_recomputes_each_hour_for_its_own_points_only() -> None:
    """Point a at hour 0 and point b at hour 1 never cross into a at hour 1 or b at hour 0."""
    touched = rollups.touched_hours(
        ["s", "s", "s", "t"],
        ["a", "a", "b", "a"],
        [H0 * 1000 + 5, H0 * 1000 + 3_599_999, (H0 + 3600) * 1000, (H0 + 3600) * 1000 + 1],
    )
    assert touched.keys == {("s", "a", H0), ("s", "b", H0 + 3600), ("t", "a", H0 + 3600)}
    assert (touched.points, touched.hours) == (3, 2)
    params = rollups.recompute_params(touched, version=7)
    assert params == {
        "lo": H0 * 1000,
        "hi": (H0 + 7200) * 1000,
        "version": 7,
        "h0": H0,
        "s0": StringArray(["s"]),
        "p0": StringArray(["a"]),
        "h1": H0 + 3600,
        "s1": StringArray(["s", "t"]),
        "p1": StringArray(["a", "b"]),
    }
    where = rollups.keys_filter(touched)
    assert where.count("toStartOfHour(ts) = ") == 2
    assert "{h1:UInt32}" in where and "{p1:Array(String)}" in where and "{h2:" not in where


def test_touched_runs_names_the_keys_touched_hours_names() -> None:
    """Per-record min/max passes give exactly the row-by-row keys, records spanning hours included."""
    hour = rollups.HOUR_MS
    runs: list[tuple[str, str, list[int], int | None]] = [
        ("s", "a", [5, 7, hour - 1], None),
        ("s", "b", [hour, 3 * hour + 1, 2 * hour + 5, 5 * hour], None),  # 1, 2, 3 and 5, not 4
        ("t", "a", [2 * hour], None),
        ("t", "c", [], None),
    ]
    sites = [site for site, _, ts, _ in runs for _ in ts]
    points = [point for _, point, ts, _ in runs for _ in ts]
    stamps = [t for _, _, ts, _ in runs for t in ts]
    assert rollups.touched_runs(runs) == rollups.touched_hours(sites, points, stamps).keys


def test_touched_runs_takes_a_runs_known_hour_as_its_key() -> None:
    """A run whose one hour is known (normalising saw it) gives that key without a pass over its rows."""
    hour = rollups.HOUR_MS
    runs: list[tuple[str, str, list[int], int | None]] = [
        ("s", "a", [hour + 5, hour + 9], 3600),
        ("s", "b", [hour + 5], None),
        ("s", "c", [], 7200),  # no rows: no key, whatever its hour
    ]
    assert rollups.touched_runs(runs) == {("s", "a", 3600), ("s", "b", 3600)}
