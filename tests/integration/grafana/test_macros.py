"""The tests' macro expansion gives the plugin's documented outputs (docs/sources/query-editor.md, 4.20.0)."""

from __future__ import annotations

import pytest

from tests.integration.grafana.macros import Range, interpolate, render

# The documentation's examples use from = 1415792726 s, to = 1447328726 s.
DOCS_RANGE = Range(1_415_792_726_123, 1_447_328_726_456)


def test_time_macros_match_the_documented_output() -> None:
    """$__timeFilter, $__fromTime, $__toTime expand exactly as the plugin's table shows (seconds)."""
    assert render("$__timeFilter(time)", {}, DOCS_RANGE) == (
        "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"
    )
    assert render("$__fromTime $__toTime", {}, DOCS_RANGE) == "toDateTime(1415792726) toDateTime(1447328726)"


def test_interval_macros_use_one_interval() -> None:
    """$__interval_s and $__timeInterval share the range's interval, at least one second."""
    six_hours = Range(0, 6 * 3_600_000)
    assert render("$__interval_s", {}, six_hours) == "20"
    assert (
        render("$__timeInterval(ts)", {}, six_hours)
        == "toStartOfInterval(toDateTime(ts), INTERVAL 20 second)"
    )
    assert render("$__interval_s", {}, Range(0, 1000)) == "1"


def test_singlequote_variables_are_quoted_and_escaped() -> None:
    """${v:singlequote} gives each value in quotes, a quote or backslash inside escaped, joined by commas."""
    assert interpolate("IN (${p:singlequote})", {"p": ["a", "it's", "b\\c"]}) == "IN ('a','it\\'s','b\\\\c')"


def test_unknown_macro_or_variable_form_is_refused() -> None:
    """A macro or variable syntax the expansion does not know fails the test instead of reaching SQL."""
    with pytest.raises(ValueError, match="not expanded"):
        render("$__timeFilter_ms(ts)", {}, DOCS_RANGE)
    with pytest.raises(ValueError, match="unexpanded"):
        render("site = $site", {"site": ["a"]}, DOCS_RANGE)
