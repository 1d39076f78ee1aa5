"""Recovering producer state from the compacted ace.sync view."""

from __future__ import annotations

from streamer.models import SyncState
from streamer.producer.state import decode_sync


def test_an_undecodable_sync_record_names_its_site_instead_of_vanishing() -> None:
    """Readable states are returned; an unreadable one is left out and reported under its key."""
    good = SyncState(site="a", watermark_ms=5, updated_at_ms=6)
    view = {b"a": good.model_dump_json().encode(), b"b": b"\x00{garbage", b"c": b'{"site": "c"}'}
    broken: dict[str, str] = {}
    assert decode_sync(view, broken) == {"a": good}
    assert sorted(broken) == ["b", "c"] and all(broken.values())
    assert decode_sync(view) == {"a": good}  # without the out-parameter: the same states
