"""Freshness: per record, the age of its newest sample when the batch became visible."""

from __future__ import annotations

from typing import Any

from streamer.processor.batch_items import Part
from streamer.processor.pipeline import freshness_seconds


def _part(ts_ms: list[int], newest: int | None = None) -> Any:
    values = [1.0] * len(ts_ms)
    return Part(item=None, site="s", point="p", ts_ms=ts_ms, values=values, newest=newest)  # type: ignore[arg-type]


def test_freshness_uses_each_records_newest_sample() -> None:
    """Two records give two ages, each from its own newest sample; empty records give none."""
    now = 1_000_000
    ages = freshness_seconds([_part([400_000, 990_000]), _part([]), _part([700_000])], now)
    assert ages == [10.0, 300.0]


def test_freshness_never_negative() -> None:
    """A sample stamped in the future (clock skew) counts as fresh, not as a negative age."""
    assert freshness_seconds([_part([2_000_000])], 1_000_000) == [0.0]


def test_freshness_takes_the_newest_the_normaliser_saw() -> None:
    """A part that carries its newest time is aged by it (not recomputed); one without, by its max."""
    now = 1_000_000
    parts = [_part([400_000, 990_000], newest=990_000), _part([700_000])]
    assert freshness_seconds(parts, now) == [10.0, 300.0]
    assert freshness_seconds([_part([400_000, 990_000], newest=400_000)], now) == [600.0]  # as given
