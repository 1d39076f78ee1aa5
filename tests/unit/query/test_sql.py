"""SQL builders bind every caller value as a parameter; the read-only guard's messages; gap shaping."""

from __future__ import annotations

import pytest

from streamer.errors import QueryError
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


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1",
        "  select count() from timeseries_raw ;",
        "WITH 1 AS x SELECT x",
        "-- comment\nSELECT 1",
        "/* a */ SHOW TABLES",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "DESCRIBE TABLE points",
        "EXPLAIN SELECT 1",
        "SELECT 'a;b', `c;d` FROM t -- e;f\nWHERE x = 'it\\'s;' /* ; */",
    ],
)
def test_read_statements_pass_the_guard(statement: str) -> None:
    """Reads pass (trailing semicolons and whitespace trimmed)."""
    assert sql.check_read_only(statement) == statement.strip().rstrip(";").strip()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("INSERT INTO points VALUES (1)", "got 'INSERT'"),
        ("drop table points", "got 'DROP'"),
        ("/* x */ ALTER TABLE points DELETE WHERE 1", "got 'ALTER'"),
        ("SET readonly = 0", "got 'SET'"),
        ("", "SQL is empty"),
        (" ; ", "SQL is empty"),
        ("SELECT 1 FORMAT JSON", "drop the FORMAT clause"),
        ("SELECT 1; SELECT 2", "send one statement"),
        ("SELECT ';'; DROP TABLE points", "send one statement"),
        ("SELECT " + "1," * 60_000 + "1", "at most 100000"),
    ],
)
def test_writes_and_odd_statements_are_refused_with_a_reason(statement: str, message: str) -> None:
    """Writing SQL, empty text, a FORMAT clause and huge text each get a 400 saying what to change."""
    with pytest.raises(QueryError, match=message) as info:
        sql.check_read_only(statement)
    assert info.value.status == 400


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
