"""Recovering producer state from the compacted ace.sync and ace.points views."""

from __future__ import annotations

import orjson

from streamer.models import SyncState
from streamer.producer.state import decode_points, decode_sync


def test_an_undecodable_sync_record_names_its_site_instead_of_vanishing() -> None:
    """Readable states are returned; an unreadable one is left out and reported under its key."""
    good = SyncState(site="a", watermark_ms=5, updated_at_ms=6)
    view = {b"a": good.model_dump_json().encode(), b"b": b"\x00{garbage", b"c": b'{"site": "c"}'}
    broken: dict[str, str] = {}
    assert decode_sync(view, broken) == {"a": good}
    assert sorted(broken) == ["b", "c"] and all(broken.values())
    assert decode_sync(view) == {"a": good}  # without the out-parameter: the same states


def test_a_points_record_that_is_not_an_object_is_ignored_not_fatal() -> None:
    """Valid JSON that is not an object (a number, a list) in ace.points is skipped like unreadable bytes,
    so the point is republished at the next refresh; its neighbours are recovered."""
    good = orjson.dumps({"site": "a", "point": "p1", "collect_enabled": True, "updated_at_ms": 1})
    view = {b"a/p1": good, b"a/p2": b"5", b"a/p3": b"[1, 2]", b"a/p4": b"\x00garbage"}
    assert set(decode_points(view)["a"]) == {"p1"}
