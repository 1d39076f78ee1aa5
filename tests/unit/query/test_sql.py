"""SQL builders bind every caller value as a parameter; gap shaping."""

from __future__ import annotations

from streamer.query import sql
from streamer.query.params import TimeRange

EVIL = "x'); DROP TABLE points; --"


def test_builders_never_paste_caller_values_into_sql_text() -> None:
    """Site, points and tag values travel as bound parameters, so quotes in them cannot break out."""
    rng = TimeRange(1, 2)
    queries = [
        sql.raw_samples("`db`", EVIL, [EVIL], rng, 10),
        sql.rollup_samples("`db`", "5m", EVIL, [EVIL], rng, 10),
        sql.latest("`db`", EVIL, [EVIL]),
        sql.points("`db`", EVIL, [EVIL], {EVIL: EVIL}),
        sql.gaps("`db`", EVIL, rng, 1.5),
        sql.known_points("`db`", EVIL),
    ]
    for text, params in queries:
        assert EVIL not in text
        assert EVIL in params.values() or [EVIL] in params.values()


def test_quote_db_escapes_backticks() -> None:
    """A database name cannot close its identifier quotes."""
    assert sql.quote_db("stream`er") == "`stream\\`er`"


def test_rollup_queries_read_the_resolution_view_and_bucket_size() -> None:
    """5m reads rollup_5m_v with 300 s buckets, 1h reads rollup_1h_v with 3600 s buckets; the row
    estimate counts rollup_1h's rows for 1h and the raw rows (5-minute buckets are not stored) for 5m."""
    text, params = sql.rollup_samples("`db`", "5m", "s", ["p"], TimeRange(0, 1), 5)
    assert "`db`.rollup_5m_v" in text and params["bucket_s"] == 300 and params["limit"] == 5
    text, params = sql.rollup_count("`db`", "1h", "s", ["p"], TimeRange(0, 1))
    assert "`db`.rollup_1h\n" in text and params["bucket_s"] == 3600
    text, params = sql.rollup_count("`db`", "5m", "s", ["p"], TimeRange(0, 1))
    assert "`db`.timeseries_raw\n" in text and "ts >= toStartOfInterval" in text and params["bucket_s"] == 300


def test_gap_rows_count_missing_samples() -> None:
    """A 10-minute hole in a 60 s series between samples at 0 and 600 s misses 9 samples; a point whose
    one span is the whole checked range is silent."""
    shaped = sql.gap_rows(
        [("p", 60_000, [(0, 600_000), (1_000_000, 1_180_000)]), ("q", 60_000, [(0, 1_200_000)])], 0, 1_200_000
    )
    assert shaped == [
        {
            "point_name": "p",
            "collect_interval_s": 60,
            "silent": False,
            "missing": 11,
            "gaps": [
                {"start": 0, "end": 600_000, "missing": 9},
                {"start": 1_000_000, "end": 1_180_000, "missing": 2},
            ],
        },
        {
            "point_name": "q",
            "collect_interval_s": 60,
            "silent": True,
            "missing": 19,
            "gaps": [{"start": 0, "end": 1_200_000, "missing": 19}],
        },
    ]


def test_gap_summary_counts_complete_gapped_and_silent_points() -> None:
    """Of 10 judged points, one with gaps and one silent leave 8 complete; the worst list holds the
    points with gaps (silent ones are counted apart), most missing first."""
    points = sql.gap_rows(
        [
            ("a", 60_000, [(0, 300_000)]),
            ("b", 60_000, [(0, 1_200_000)]),
            ("c", 60_000, [(60_000, 600_000)]),
        ],
        0,
        1_200_000,
    )
    summary = sql.gap_summary(points, judged=10, not_judged=2)
    assert summary == {
        "points_judged": 10,
        "complete": 7,
        "with_gaps": 2,
        "silent": 1,
        "not_judged": 2,
        "missing_samples": 4 + 19 + 8,
        "worst": [{"point_name": "c", "gaps": 1, "missing": 8}, {"point_name": "a", "gaps": 1, "missing": 4}],
    }
