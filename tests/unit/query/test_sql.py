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
    """5m reads rollup_5m_v with 300 s buckets, 1h reads rollup_1h_v with 3600 s buckets."""
    text, params = sql.rollup_samples("`db`", "5m", "s", ["p"], TimeRange(0, 1), 5)
    assert "`db`.rollup_5m_v" in text and params["bucket_s"] == 300 and params["limit"] == 5
    text, params = sql.rollup_count("`db`", "1h", "s", ["p"], TimeRange(0, 1))
    assert "`db`.rollup_1h\n" in text and params["bucket_s"] == 3600


def test_gap_rows_count_missing_samples() -> None:
    """A 10-minute hole in a 60 s series between samples at 0 and 600 s misses 9 samples."""
    shaped = sql.gap_rows([("p", 60_000, [(0, 600_000), (1_000_000, 1_180_000)])])
    assert shaped == [
        {
            "point_name": "p",
            "collect_interval_s": 60,
            "gaps": [
                {"start": 0, "end": 600_000, "missing": 9},
                {"start": 1_000_000, "end": 1_180_000, "missing": 2},
            ],
        }
    ]
