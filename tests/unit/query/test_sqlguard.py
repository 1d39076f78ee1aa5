"""The guard's rules on EXPLAIN AST dumps as ClickHouse prints them (no engine here)."""

from __future__ import annotations

import pytest

from streamer.errors import QueryError
from streamer.query import sqlguard

FUNCTIONS = ["file", "url", "numbers", "format", "remote"]


def _dump(text: str) -> list[str]:
    return [line for line in text.strip("\n").split("\n")]


SELECT_FILE = """
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function file (alias f) (children 1)
       ExpressionList (children 1)
        Literal '/etc/passwd'
 Identifier JSONCompactEachRow
"""


def test_parse_dump_builds_the_tree_by_indentation() -> None:
    """Each line is a node one space deeper than its parent; kind and name come from its text."""
    (root,) = sqlguard.parse_dump(_dump(SELECT_FILE))
    assert root.kind == "SelectWithUnionQuery" and [c.kind for c in root.children] == [
        "ExpressionList",
        "Identifier",
    ]
    function = root.children[0].children[0].children[1].children[0].children[0].children[0]
    assert (function.kind, function.name) == ("Function", "file")


def test_table_function_outside_the_allow_list_is_refused() -> None:
    """file() under a TableExpression is refused, named in the message."""
    with pytest.raises(QueryError, match=r"table function file\(\) is refused"):
        sqlguard.check_dump(_dump(SELECT_FILE), "JSONCompactEachRow", FUNCTIONS)


def test_allowed_table_function_passes_and_the_kind_is_returned() -> None:
    """numbers() is allowed; the statement's kind comes back."""
    dump = _dump(SELECT_FILE.replace("Function file", "Function numbers"))
    assert sqlguard.check_dump(dump, "JSONCompactEachRow", FUNCTIONS) == "SelectWithUnionQuery"


def test_output_options_on_the_root_are_refused() -> None:
    """A Literal (INTO OUTFILE) before the transport's FORMAT is refused; a foreign FORMAT too."""
    base = SELECT_FILE.replace("Function file", "Function numbers")
    outfile = base.replace(
        " Identifier JSONCompactEachRow", " Literal '/tmp/x'\n Identifier JSONCompactEachRow"
    )
    with pytest.raises(QueryError, match="INTO OUTFILE"):
        sqlguard.check_dump(_dump(outfile), "JSONCompactEachRow", FUNCTIONS)
    with pytest.raises(QueryError, match="FORMAT"):
        sqlguard.check_dump(_dump(base.replace("JSONCompactEachRow", "CSV")), "JSONCompactEachRow", FUNCTIONS)


def test_a_newline_in_an_identifier_cannot_hide_a_node() -> None:
    """A line a crafted name adds can only add refusals, never remove the real nodes."""
    dump = _dump(SELECT_FILE)
    dump.insert(5, "    Identifier x\n      Function numbers")
    with pytest.raises(QueryError, match="file"):
        sqlguard.check_dump(dump, "JSONCompactEachRow", FUNCTIONS)


@pytest.mark.parametrize(
    "kind", ["InsertQuery", "AlterQuery", "SetQuery", "ExistsTableQuery", "ShowGrantsQuery"]
)
def test_statements_other_than_reads_are_refused(kind: str) -> None:
    """Only SELECT, EXPLAIN of a SELECT, DESCRIBE and catalogue SHOWs are reads."""
    with pytest.raises(QueryError, match=f"only read statements are allowed.*got {kind}"):
        sqlguard.check_dump([kind, " Identifier JSONCompactEachRow"], "JSONCompactEachRow", FUNCTIONS)


def test_explain_options_are_allowed_but_settings_elsewhere_are_not() -> None:
    """EXPLAIN's own options (its first child) pass; a Set anywhere else is refused."""
    explain = ["Explain EXPLAIN PIPELINE (children 3)", " Set", " SelectWithUnionQuery (children 1)"]
    explain += ["  ExpressionList (children 1)", "   SelectQuery (children 1)", " Identifier Native"]
    assert sqlguard.check_dump(explain, "Native", FUNCTIONS) == "Explain"
    nested = [
        *explain[:4],
        "   SelectQuery (children 2)",
        "    ExpressionList",
        "    Set",
        " Identifier Native",
    ]
    with pytest.raises(QueryError, match="SETTINGS"):
        sqlguard.check_dump(nested, "Native", FUNCTIONS)
