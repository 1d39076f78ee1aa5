"""Query parameters of many strings, formatted in C-level passes.

clickhouse-connect formats a ``str`` parameter one character at a time, in a Python generator: the
point names of a rollup recompute (4,583 an hour for one site) took ~45 ms of Python an hour of a
batch, holding the GIL in the thread that should only wait on the engine. ``StringArray`` renders
the same text for an ``Array(String)`` parameter with C-level passes: one scan of all the names for
the characters that need escaping (names rarely have any), ``str.replace`` for the few that do.

It reaches the query through clickhouse-connect's rule that a value of a type it does not know is
formatted by ``str()``, verbatim. That rule is the one contact with the library's binding internals:
``check_binding`` proves it, and that the text is the library's own for the same list, before the
first client is made (``streamer.sink.client``). Both targets bind parameters with the same function,
so the text a server receives is the one the embedded engine parses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final

from clickhouse_connect.driver import binding

from streamer.errors import ConfigError

# What clickhouse-connect escapes with a backslash in a string literal (binding.must_escape).
_ESCAPED: Final = ("\\", "'", "`", "\t", "\n")
# Every escaped character, alone and among others, a name that is only quotes, non-ASCII, empty.
_PROBE: Final = ("", *_ESCAPED, "a'b\\c`d\te\nf", "''", "\\'", "zoné/温度 ✓", "$x$", "{p0:String}")


class StringArray:
    """An ``Array(String)`` query parameter, its literal text built once."""

    __slots__ = ("_text", "values")

    def __init__(self, values: Iterable[str]) -> None:
        self.values = tuple(values)
        every = "".join(self.values)
        plain = not any(c in every for c in _ESCAPED)
        escaped = self.values if plain else map(_escape, self.values)
        self._text = "['" + "', '".join(escaped) + "']" if self.values else "[]"

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"StringArray({len(self.values)} values)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StringArray) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)


def _escape(value: str) -> str:
    for c in _ESCAPED:  # the backslash first: the others add backslashes
        if c in value:
            value = value.replace(c, "\\" + c)
    return value


@functools.cache
def check_binding() -> None:
    """Raise ConfigError unless clickhouse-connect binds a ``StringArray`` as its own list's text."""
    for values in ((), _PROBE, *((v,) for v in _PROBE)):
        ours = binding.format_bind_value(StringArray(values))
        theirs = binding.format_bind_value(list(values))
        if ours != theirs:
            raise ConfigError(
                "this clickhouse-connect formats query parameters differently from streamer.sink.params "
                f"({ours!r} against its own {theirs!r}); install the version in constraints.txt"
            )
