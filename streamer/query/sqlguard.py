"""The read-only SQL guard's rules, applied to the tree ClickHouse itself parsed.

The caller's text is never judged by patterns here: the engine parses it (``formatQuerySingleLine``
refuses syntax errors and several statements and drops comments), and ``EXPLAIN AST`` of the
canonical text it returns (which parses, never runs, the statement) is the tree these rules read.
Each line of that dump is one node, indented one space per level: ``SelectWithUnionQuery (children 1)``,
``Function file (alias f) (children 1)``, ``Literal '/tmp/x'``.

What a statement may be: SELECT (WITH, UNION, EXCEPT, INTERSECT), EXPLAIN of one, DESCRIBE, and the
catalogue SHOWs. What it may not contain: output options (``INTO OUTFILE``, ``FORMAT``), ``SETTINGS``
at any level, or any table function outside ``ALLOWED_TABLE_FUNCTIONS`` — every other one reads files,
the network or other servers (file, url, remote, s3, mysql, ...), and the scalar ``file()`` is refused
with them (it reads files too). Pure: no engine here (see ``streamer.query.readonly``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from streamer.errors import QueryError

ALLOWED_TABLE_FUNCTIONS: Final = frozenset(
    {"numbers", "numbers_mt", "generate_series", "generateseries", "values", "view"}
)
# Table-function names are refused anywhere (``x IN file(...)``, ``ARRAY JOIN url(...)``), except
# these, which are also ordinary scalar functions; and scalar functions that read the server's files.
HARMLESS_SCALARS: Final = frozenset({"format"})
REFUSED_FUNCTIONS: Final = frozenset({"file", "catboostevaluate"})
SHOW_ROOTS: Final = frozenset(
    {
        "ShowTables",
        "ShowColumns",
        "ShowIndexes",
        "ShowEngines",
        "ShowFunctions",
        "ShowCreateTableQuery",
        "ShowCreateViewQuery",
        "ShowCreateDatabaseQuery",
        "ShowCreateDictionaryQuery",
    }
)
READ_ROOTS: Final = SHOW_ROOTS | {"SelectWithUnionQuery", "Explain", "DescribeQuery"}
ALLOWED_KINDS: Final = "SELECT, WITH, EXPLAIN, DESCRIBE, SHOW"


@dataclass
class Node:
    """One node of the dump: its kind (first word), the rest of its line, its children."""

    kind: str
    text: str
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The word after the kind: a function's or an identifier's name ('' when none)."""
        rest = self.text[len(self.kind) :].split()
        return rest[0] if rest else ""


def parse_dump(lines: Iterable[str]) -> list[Node]:
    """The dump's top-level nodes (a single statement has one)."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        text = line.strip(" ")
        node = Node(text.split(None, 1)[0] if text.strip() else "", text)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        (stack[-1][1].children if stack else roots).append(node)
        stack.append((depth, node))
    return roots


def check_dump(lines: Iterable[str], transport_format: str, table_functions: Iterable[str]) -> str:
    """The statement's kind (its root node), or ``QueryError`` unless the dump is one allowed read
    statement with nothing refused in it.

    ``transport_format`` is the FORMAT the check itself appended (the dump shows it as the root's last
    child); ``table_functions`` are every table function the engine knows (refused as scalars too)."""
    roots = parse_dump(lines)
    if len(roots) != 1:
        raise QueryError("send exactly one statement")
    root = roots[0]
    if root.kind not in READ_ROOTS:
        raise QueryError(not_a_read(root.kind or "an empty statement"))
    last = root.children[-1] if root.children else None
    if last is None or last.kind != "Identifier" or last.name != transport_format:
        raise QueryError("drop the FORMAT clause: the API answers JSON, or CSV with ?format=csv")
    _check_root(root, root.children[:-1])
    names = {n.lower() for n in table_functions}
    refused = (names - ALLOWED_TABLE_FUNCTIONS - HARMLESS_SCALARS) | REFUSED_FUNCTIONS
    _check_nodes(root, explain_options=root.kind == "Explain", refused=refused)
    return root.kind


def _check_root(root: Node, body: list[Node]) -> None:
    kinds = [c.kind for c in body]
    if root.kind == "SelectWithUnionQuery":
        ok = kinds == ["ExpressionList"]
    elif root.kind == "Explain":
        explained = [c.kind for c in (body[1:] if kinds[:1] == ["Set"] else body)]
        if explained[:1] != ["SelectWithUnionQuery"]:
            raise QueryError(not_a_read(f"EXPLAIN of {explained[0] if explained else 'nothing'}"))
        ok = explained == ["SelectWithUnionQuery"]
    elif root.kind == "DescribeQuery":
        ok = kinds == ["TableExpression"]
    else:  # a SHOW: its database and table names are its only children
        ok = all(k == "Identifier" for k in kinds)
    if not ok:
        raise QueryError(_output_options_message(body))


def not_a_read(kind: str) -> str:
    return (
        f"only read statements are allowed ({ALLOWED_KINDS}), got {kind}: "
        "writes go through the pipeline, not the query API"
    )


def _output_options_message(body: list[Node]) -> str:
    if any(c.kind == "Literal" for c in body):
        return "INTO OUTFILE is refused: the API answers the result itself"
    if any(c.kind == "Set" for c in body):
        return "SETTINGS clauses are refused: the endpoint's limits are fixed by the server"
    return "drop the FORMAT clause and other output options: the API answers JSON, or CSV with ?format=csv"


def _check_nodes(node: Node, explain_options: bool, refused: set[str]) -> None:
    """Every node below ``node``; ``explain_options``: its first child may be EXPLAIN's own options."""
    for i, child in enumerate(node.children):
        if child.kind == "Set" and not (explain_options and i == 0):
            raise QueryError("SETTINGS clauses are refused: the endpoint's limits are fixed by the server")
        if child.kind == "SelectWithUnionQuery" and [c.kind for c in child.children] != ["ExpressionList"]:
            raise QueryError(_output_options_message(child.children[1:]))
        if child.kind == "Function":
            name = child.name.lower()
            if node.kind == "TableExpression" and name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryError(_table_function_message(child.name))
            if name in refused:
                raise QueryError(f"function {child.name}() reads files or the network: refused here")
        _check_nodes(child, explain_options=False, refused=refused)


def _table_function_message(name: str) -> str:
    allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS - {"generateseries"}))
    return f"table function {name}() is refused here (it may read files or the network); allowed: {allowed}"
