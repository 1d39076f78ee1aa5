"""The overlap filter: what it drops, what it keeps, and when what it knows is not used."""

from __future__ import annotations

from array import array

from streamer.ace.pagination import Sample
from streamer.producer.overlap import OverlapFilter, Seen, fingerprints
from streamer.producer.windows import Window

T0, T1 = "2024-03-01T12:00:00Z", "2024-03-01T12:01:00Z"
WINDOW = Window(0, 2_000, "incremental", fresh_ms=1_000)


def _seen(samples: list[Sample], end_ms: int = 1_000) -> Seen:
    prints = fingerprints(samples)
    assert prints is not None
    return Seen(end_ms, array("q", prints))


def test_known_samples_are_dropped_and_new_or_changed_ones_kept_in_order() -> None:
    """Only samples whose point, time and value were all read before are dropped."""
    before = [Sample("p", T0, 1.0), Sample("p", T1, -1), Sample("q", T0, "on")]
    page = [Sample("q", T0, "on"), Sample("p", T1, -2), Sample("p", T0, 1.0), Sample("q", T1, "on")]
    overlap = OverlapFilter(_seen(before), WINDOW)
    assert overlap.page(page) == [Sample("p", T1, -2), Sample("q", T1, "on")]
    assert overlap.unchanged == 2


def test_what_was_read_is_remembered_whether_published_or_not() -> None:
    """The next window knows every sample this one read, the dropped ones too."""
    overlap = OverlapFilter(_seen([Sample("p", T0, 1.0)]), WINDOW)
    overlap.page([Sample("p", T0, 1.0), Sample("p", T1, 2.0)])
    following = OverlapFilter(overlap.seen(2_000), Window(1_000, 3_000, "incremental", fresh_ms=2_000))
    assert following.page([Sample("p", T0, 1.0), Sample("p", T1, 2.0), Sample("p", T1, 3.0)]) == [
        Sample("p", T1, 3.0)
    ]


def test_fingerprints_of_another_window_end_are_not_used() -> None:
    """Known samples from a window that did not end where this one's fresh part starts drop nothing."""
    page = [Sample("p", T0, 1.0)]
    for window in (Window(0, 2_000, "incremental", fresh_ms=999), Window(0, 2_000, "incremental")):
        assert OverlapFilter(_seen(page), window).page(page) == page
    assert OverlapFilter(None, WINDOW).page(page) == page


def test_a_nan_and_a_page_of_dicts_are_never_dropped() -> None:
    """A NaN hashes by identity, so it is published (and rejected) again; a page orjson decoded
    (dicts) has no fingerprints: published whole and not remembered."""
    nan = Sample("p", T0, float("nan"))
    assert OverlapFilter(_seen([nan]), WINDOW).page([Sample("p", T0, float("nan"))]) != []
    dicts = [{"name": "p", "time": T0, "value": 1.0}]
    overlap = OverlapFilter(_seen([Sample("p", T0, 1.0)]), WINDOW)
    assert fingerprints(dicts) is None
    assert overlap.page(dicts) == dicts
    assert len(overlap.seen(2_000).fingerprints) == 0


def test_a_page_with_an_unhashable_value_is_published_whole() -> None:
    """A value without a hash (a list a caller put in a struct) leaves its page unfiltered, not raised."""
    page = [Sample("p", T0, 1.0), Sample("p", T1, [[0]])]  # type: ignore[arg-type]
    overlap = OverlapFilter(_seen([Sample("p", T0, 1.0)]), WINDOW)
    assert overlap.page(page) == page
