"""The points diff: only new or changed points are published, removed or disabled ones are tombstoned."""

from __future__ import annotations

import orjson

from streamer.models import AcePoint
from streamer.producer.points import (
    PointChange,
    PointDigest,
    decode_point_value,
    diff_points,
    point_record,
    weather_records,
)

SITE = "site_a"


def ace(name: str, **fields: object) -> AcePoint:
    return AcePoint.model_validate({"name": name, **fields})


def publish(
    points: list[AcePoint], previous: dict[str, PointDigest], now: int = 1
) -> tuple[list[PointChange], dict[str, PointDigest]]:
    return diff_points(SITE, previous, [point_record(SITE, p, now) for p in points])


def test_first_refresh_publishes_every_enabled_point() -> None:
    """With nothing published yet, each enabled point becomes a record; disabled ones are not mentioned."""
    changes, published = publish([ace("a/1"), ace("a/2"), ace("a/3", collect_enabled=False)], {})
    assert [c.point for c in changes] == ["a/1", "a/2"]
    assert all(c.value is not None for c in changes)
    assert set(published) == {"a/1", "a/2"}
    assert changes[0].key == b"site_a/a/1"


def test_unchanged_refresh_publishes_nothing_even_with_new_timestamp() -> None:
    """The same points seen later (new updated_at_ms) yield no changes."""
    _, published = publish([ace("a/1", kv_tags={"unit": "degF"})], {}, now=1)
    changes, again = publish([ace("a/1", kv_tags={"unit": "degF"})], published, now=999)
    assert changes == []
    assert again == published


def test_changed_removed_and_disabled_points() -> None:
    """A changed point is republished, a vanished one and a newly disabled one are tombstoned."""
    _, published = publish([ace("a/1"), ace("a/2"), ace("a/3")], {})
    changes, now = publish([ace("a/1", point_type="analog"), ace("a/3", collect_enabled=False)], published)
    by_point = {c.point: c.value for c in changes}
    assert set(by_point) == {"a/1", "a/2", "a/3"}
    assert by_point["a/2"] is None and by_point["a/3"] is None
    assert by_point["a/1"] is not None and orjson.loads(by_point["a/1"])["point_type"] == "analog"
    assert set(now) == {"a/1"}


def test_published_value_roundtrips_to_the_same_content() -> None:
    """A value read back from ace.points compares equal to the content it was made from (no re-publish
    after a restart), extra API fields included."""
    point = ace(
        "a/1", kv_tags={"unit": "degF"}, bacnet_data={"device_id": 7}, client="c", vendor_field=[1, 2]
    )
    changes, published = publish([point], {})
    value = changes[0].value
    assert value is not None
    recovered = {"a/1": decode_point_value(value)}
    assert recovered == published
    assert publish([point], recovered, now=5)[0] == []
    record = orjson.loads(value)
    assert record["unit"] == "degF"
    assert record["metadata"] == {"vendor_field": [1, 2], "client": "c", "bacnet_data": {"device_id": 7}}


def test_weather_points_are_always_collected() -> None:
    """The nine weather.* points are enabled records of the site."""
    records = weather_records(SITE, 1)
    assert len(records) == 9
    assert all(r.collect_enabled and r.site == SITE for r in records)
    assert "weather.temperature" in {r.point for r in records}


def test_a_published_table_holds_a_digest_per_point_whatever_the_key_order() -> None:
    """What a refresh remembers of a point is a 16-byte digest; a value read back with its keys (nested
    ones too) in another order has the same digest, and any changed field a different one."""
    point = ace("a/1", kv_tags={"unit": "degF", "zone": "z1"}, bacnet_data={"device_id": 7, "name": "x"})
    changes, published = publish([point], {})
    assert isinstance(published["a/1"], bytes) and len(published["a/1"]) == 16
    value = changes[0].value
    assert value is not None
    record = orjson.loads(value)
    reordered = {k: _reversed(v) for k, v in reversed(record.items())}
    assert list(reordered) != list(record)
    assert decode_point_value(orjson.dumps(reordered)) == published["a/1"]
    record["kv_tags"]["zone"] = "z2"
    assert decode_point_value(orjson.dumps(record)) != published["a/1"]


def _reversed(value: object) -> object:
    if isinstance(value, dict):
        return {k: _reversed(v) for k, v in reversed(value.items())}
    return value
