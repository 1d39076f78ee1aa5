"""The grouper's records are orjson's encoding of the API's samples, whatever the pages hold."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.ace.pagination import decode_timeseries_page, sample_fields
from streamer.producer.grouping import (
    MALFORMED_SHAPE,
    MALFORMED_TOO_LARGE,
    MALFORMED_UNENCODABLE,
    PointGrouper,
)

MAX_BYTES = 400


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # -0.0, subnormals, exponents
    st.integers(-(2**70), 2**70),  # past 64 bits: orjson cannot encode those
    st.sampled_from([None, True, False, "nan", "inf", "72.5", "", 'q"uote\\', "é\u2028", [1], {"a": 1}]),
    st.text(max_size=8),
    st.just("x" * 500),  # larger than a record may be
    st.just(_nested(300)),  # nested deeper than orjson encodes
)


@st.composite
def sample_objects(draw: st.DrawFn) -> Any:
    """Usually a well-formed sample of a few points; sometimes an odd one, or not an object."""
    sample: dict[str, Any] = {
        "name": draw(st.sampled_from(["p/1", "p/2", 'p/"3"', "é/4", "", None, 5])),
        "time": draw(st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+02:00", "", None])),
        "value": draw(VALUES),
    }
    odd = draw(st.sampled_from(["none"] * 6 + ["drop-value", "drop-name", "extra", "not-object"]))
    if odd == "not-object":
        return draw(VALUES)
    if odd == "extra":
        sample["quality"] = 1
    if odd.startswith("drop"):
        sample.pop(odd.removeprefix("drop-"))
    return sample


def _expected(pages: list[list[Any]]) -> tuple[dict[str, list[bytes]], Counter[str]]:
    """Each point's samples as orjson encodes each ``[time, value]`` pair, in page order, and the
    samples skipped by reason: the obvious, one-sample-at-a-time reference."""
    kept: dict[str, list[bytes]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for page in pages:
        for sample in page:
            fields = sample_fields(sample)
            name, time, value = fields if fields is not None else (None, None, None)
            if not (isinstance(name, str) and name and isinstance(time, str) and time):
                skipped[MALFORMED_SHAPE] += 1
                continue
            try:
                encoded = orjson.dumps([time, value])
            except orjson.JSONEncodeError:
                skipped[MALFORMED_UNENCODABLE] += 1
                continue
            if len(encoded) > MAX_BYTES - len(orjson.dumps(name)) - len(name.encode()):
                skipped[MALFORMED_TOO_LARGE] += 1
                continue
            kept[name].append(encoded)
    return kept, skipped


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(sample_objects(), max_size=30), min_size=1, max_size=5),
    st.integers(1, 12),
    st.integers(1, 60),
    st.sampled_from([0, 10, 30]),
)
def test_records_are_orjsons_encoding_of_every_page(
    items: list[list[Any]], record_max: int, gather_max: int, defer_max: int
) -> None:
    """Pages as the client decodes them (Sample structs, or orjson's dicts for odd pages), grouped
    under any bounds: each point's records hold exactly orjson's encoding of its well-formed samples,
    in page order, each record within record_max and the byte bound; every other sample is counted
    by reason."""
    # json, not orjson: a page may hold values orjson cannot encode (deep nesting, big integers)
    pages = [decode_timeseries_page(json.dumps({"point_samples": page}).encode())[0] for page in items]
    grouper = PointGrouper(record_max, gather_max, MAX_BYTES, known=["p/1", "never"], defer_max=defer_max)
    groups = []
    for page in pages:
        groups += grouper.add(page)
        assert grouper.held <= gather_max
    groups += grouper.finish()
    kept, skipped = _expected(pages)
    bodies: dict[str, list[bytes]] = defaultdict(list)
    for group in groups:
        assert 1 <= group.size <= record_max
        assert len(group.body) <= MAX_BYTES - len(orjson.dumps(group.point)) - len(group.point.encode())
        assert len(orjson.loads(b"[" + bytes(group.body) + b"]")) == group.size
        bodies[group.point].append(bytes(group.body))
    assert {point: b",".join(parts) for point, parts in bodies.items()} == {
        point: b",".join(parts) for point, parts in kept.items()
    }
    assert Counter(grouper.malformed_by) == skipped and grouper.malformed == sum(skipped.values())
    assert grouper.accepted == sum(map(len, kept.values())) and grouper.held == 0
