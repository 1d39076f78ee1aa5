"""What Grafana and the ClickHouse plugin (grafana-clickhouse-datasource 4.20.0) do to a panel's rawSql.

Two steps, in Grafana's order: the frontend replaces template variables (``${name:singlequote}``: each
value in single quotes, ``'`` and ``\\`` escaped, joined by ``,``), then the plugin's backend expands its
macros (pkg/macros/macros.go at tag v4.20.0): times are the range's ends truncated to Unix seconds.

    $__timeFilter(c)   c >= toDateTime(<from>) AND c <= toDateTime(<to>)
    $__fromTime        toDateTime(<from>)          $__toTime  toDateTime(<to>)
    $__interval_s      max(1, interval seconds)
    $__timeInterval(c) toStartOfInterval(toDateTime(c), INTERVAL <interval_s> second)

Anything else that starts with ``$`` raises: a dashboard using a macro or variable syntax this module
does not know is not tested until it is added here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VARIABLE = re.compile(r"\$\{(\w+):singlequote\}")
_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
# Grafana's interval rounding (kbn.roundInterval) lands on these steps, in seconds.
_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_DATA_POINTS = 1000


@dataclass(frozen=True)
class Range:
    """A dashboard time range in epoch milliseconds, and the interval Grafana derives from it."""

    from_ms: int
    to_ms: int

    @property
    def interval_s(self) -> int:
        raw = (self.to_ms - self.from_ms) / 1000 / MAX_DATA_POINTS
        return max([s for s in _STEPS if s <= raw] or [1])


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(sql: str, variables: dict[str, list[str]]) -> str:
    """Grafana's frontend step: template variables replaced."""

    def replace(match: re.Match[str]) -> str:
        return ",".join(quote(v) for v in variables[match.group(1)])

    return _VARIABLE.sub(replace, sql)


def expand(sql: str, time_range: Range) -> str:
    """The plugin's backend step: macros replaced."""
    start, end = time_range.from_ms // 1000, time_range.to_ms // 1000
    interval = time_range.interval_s

    def replace(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name == "timeFilter" and arg:
            return f"{arg} >= toDateTime({start}) AND {arg} <= toDateTime({end})"
        if name == "timeInterval" and arg:
            return f"toStartOfInterval(toDateTime({arg}), INTERVAL {interval} second)"
        if arg is None and name in {"fromTime", "toTime", "interval_s"}:
            return {"fromTime": f"toDateTime({start})", "toTime": f"toDateTime({end})"}.get(
                name, str(interval)
            )
        raise ValueError(f"macro $__{name} is not expanded by tests/integration/grafana/macros.py")

    return _MACRO.sub(replace, sql)


def render(sql: str, variables: dict[str, list[str]], time_range: Range) -> str:
    """rawSql as ClickHouse receives it from the plugin."""
    text = expand(interpolate(sql, variables), time_range)
    if "$" in text:
        raise ValueError(f"unexpanded '$' left in: {text}")
    return text
