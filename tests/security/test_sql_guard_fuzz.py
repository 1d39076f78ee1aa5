"""A bounded hypothesis run of the SQL guard (issue #12 item 7) against the real embedded engine.

Statements are assembled from fragments, some forbidden (file-reading table functions, INTO OUTFILE,
FORMAT, SETTINGS, writes, a second statement), placed as code or hidden in comments and strings.
Invariants: the guard answers every text with a statement or a QueryError (never anything else);
whatever it accepts, an independent look at the engine's EXPLAIN AST of what runs shows one read
statement with none of the forbidden nodes; whatever carries a forbidden fragment as code is refused;
and no file is ever written.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamer.errors import QueryError
from streamer.query.readonly import ReadOnlySql
from streamer.settings import Settings
from tests.integration.query.conftest import Data

SENTINEL = "/tmp/streamer-guard-fuzz-sentinel"

SAFE_SOURCES = ["system.one", "numbers(3)", "numbers_mt(2)", "timeseries_raw", "points", "(SELECT 1 AS x)"]
BAD_SOURCES = [
    f"file('{SENTINEL}', 'LineAsString')",
    "url('http://127.0.0.1:9/', 'LineAsString')",
    "remote('127.0.0.1:9000', system.one)",
    "s3('http://127.0.0.1:9/b/k', 'CSV')",
    "mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "executable('x.sh', 'CSV', 'a String')",
]
SAFE_EXPRESSIONS = ["1", "count()", "'a;b'", "now()", "[1, 2]", "format('{}', 1)", "toUInt256(1)"]
BAD_EXPRESSIONS = [f"file('{SENTINEL}')", "(SELECT count() FROM file('/etc/hostname', 'LineAsString'))"]
SAFE_TAILS = ["", " LIMIT 1", " WHERE 1", " ORDER BY 1", " -- tail", " /* c */", ";"]
BAD_TAILS = [
    f" INTO OUTFILE '{SENTINEL}' APPEND",
    f" INTO OUTFILE '{SENTINEL}'",
    " FORMAT JSON",
    " FORMAT JSONCompactEachRowWithNamesAndTypes",
    " SETTINGS max_threads = 8",
    "; SELECT 2",
    " # '\n; SELECT 2",
    f"; SELECT 1 INTO OUTFILE '{SENTINEL}'",
]
BAD_STATEMENTS = [
    "INSERT INTO points (site, point) VALUES ('fuzz', 'p')",
    "DROP TABLE points",
    "SET readonly = 0",
    "ALTER TABLE points DELETE WHERE 1",
    "SYSTEM STOP MERGES",
    "EXISTS TABLE points",
]
# Independent oracle over the dump (a test's regex, not the guard's rules).
_BAD_NODE = re.compile(r"^\s*(Function (file|url|remote|s3|mysql|executable)\b|Set$)")


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, bool]:
    """(text, carries a forbidden fragment as code)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(BAD_STATEMENTS)), True
    bad_source, bad_expr, bad_tail = (draw(st.booleans()) and draw(st.booleans()) for _ in range(3))
    source = draw(st.sampled_from(BAD_SOURCES if bad_source else SAFE_SOURCES))
    expr = draw(st.sampled_from(BAD_EXPRESSIONS if bad_expr else SAFE_EXPRESSIONS))
    tail = draw(st.sampled_from(BAD_TAILS if bad_tail else SAFE_TAILS))
    # forbidden text hidden where it is no code: a comment or a string
    hidden = draw(
        st.sampled_from(["", *(f"/* {b} */ " for b in BAD_TAILS[:3]), "'file(x) INTO OUTFILE y' AS s, "])
    )
    prefix = draw(st.sampled_from(["SELECT ", "WITH 1 AS w SELECT ", "EXPLAIN SELECT ", "-- c\nSELECT "]))
    text = f"{prefix}{hidden}{expr} FROM {source}{tail}"
    return text, bad_source or bad_expr or bad_tail


@pytest.fixture(scope="module")
def guard(store: tuple[Settings, Data]) -> Iterator[ReadOnlySql]:
    """The guard on its own engine session (closed after: the engine admits one directory at a time);
    the sentinel file absent at the start."""
    Path(SENTINEL).unlink(missing_ok=True)
    sql = ReadOnlySql(store[0])
    yield sql
    asyncio.run(sql.close())


def _dump(guard: ReadOnlySql, canonical: str) -> list[str]:
    engine = guard._connect()
    body = engine.text(f"EXPLAIN AST {canonical} FORMAT JSONCompactEachRow", {})
    return [orjson.loads(line)[0] for line in body.splitlines() if line]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=statements())
def test_the_guard_accepts_only_single_reads_without_forbidden_parts(
    guard: ReadOnlySql, case: tuple[str, bool]
) -> None:
    """Accepted texts are one read statement with no forbidden node; forbidden code is refused; no file."""
    text, forbidden = case
    try:
        canonical, kind = guard.check(text)
    except QueryError:
        accepted = False
        event("refused")
    else:
        event(f"accepted {kind}")
        accepted = True
        dump = _dump(guard, canonical)
        roots = [line for line in dump if not line.startswith(" ")]
        assert len(roots) == 1 and kind in ("SelectWithUnionQuery", "Explain"), dump
        assert not [line for line in dump if _BAD_NODE.match(line)], dump
        assert not [line for line in dump if line.startswith(" Literal")], dump  # INTO OUTFILE
        with contextlib.suppress(QueryError):  # e.g. an unknown column: still no file, no other error
            guard.run_sync(text)
    assert not (forbidden and accepted), text
    assert not Path(SENTINEL).exists()


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("SELECT FROM file('x');#-\n/*`\"\\1,()")), max_size=60))
def test_arbitrary_text_gets_an_answer_or_a_reason(guard: ReadOnlySql, text: str) -> None:
    """Any text ends in a statement or a QueryError (a 4xx), never another exception; no file."""
    with contextlib.suppress(QueryError):
        guard.check(text)
    assert not Path(SENTINEL).exists()
