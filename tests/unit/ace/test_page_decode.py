"""decode_timeseries_page: typed msgspec decoding of well-formed pages, orjson's answer for every other."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.ace.pagination import Sample, decode_timeseries_page, parse_timeseries_page, sample_fields
from streamer.ace.retry import AceTransient


def _orjson_answer(body: bytes) -> tuple[list[Any], str | None]:
    """What the client answered before the typed decoding: orjson's dicts, parse_timeseries_page."""
    return parse_timeseries_page(orjson.loads(body))


def _said(samples: list[Any]) -> bytes:
    """What each sample says, as the producer encodes it into records (bytes: -0.0 is not 0.0)."""
    return orjson.dumps([sample_fields(s) for s in samples])


# Number spellings a JSON encoder may send: exponents, long mantissas, integers past 64 bits.
NUMBERS = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,19})?([eE][+-]?[0-9]{1,3})?\Z")
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
SCALARS = st.one_of(
    NUMBERS,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["true", "false", "null", '"nan"', '"72.5"', "[1]", '{"a": 1}', "[[[]]]"]),
    TEXT.map(lambda t: json.dumps(t, ensure_ascii=False)),
    TEXT.map(json.dumps),  # \u escapes
)


@st.composite
def samples_text(draw: st.DrawFn) -> str:
    """One sample object as JSON text: usually name, time and value; sometimes odd or not an object."""
    name = draw(st.one_of(TEXT, st.just("site/ahu_1/sat"))).replace("\\", "")
    fields = {
        "name": json.dumps(name),
        "time": json.dumps(draw(st.sampled_from(["2024-01-01T00:00:00Z", "", "t"]))),
        "value": draw(SCALARS),
    }
    odd = draw(st.sampled_from(["none", "none", "none", "drop", "extra", "wrong", "not-object"]))
    if odd == "not-object":
        return draw(SCALARS)
    if odd == "drop":
        fields.pop(draw(st.sampled_from(sorted(fields))))
    if odd == "extra":
        fields["quality"] = draw(SCALARS)
    if odd == "wrong":
        fields[draw(st.sampled_from(["name", "time"]))] = draw(SCALARS)
    return "{" + ",".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


@st.composite
def page_bodies(draw: st.DrawFn) -> bytes:
    samples = draw(st.lists(samples_text(), max_size=8))
    envelope = [f'"point_samples": [{", ".join(samples)}]']
    cursor = draw(st.sampled_from(["absent", '"c2"', '""', "null", "5", "[1]"]))
    if cursor != "absent":
        envelope.append(f'"next_cursor": {cursor}')
    more = draw(st.sampled_from(["absent", "true", "false", '"false"', '"0"', "null", "0", "1.5", "{}"]))
    if more != "absent":
        envelope.append(f'"has_more": {more}')
    return ("{" + ", ".join(draw(st.permutations(envelope))) + "}").encode()


@settings(max_examples=400, deadline=None)
@given(page_bodies())
def test_a_page_says_what_orjson_reads_in_it(body: bytes) -> None:
    """Whatever the page (numbers spelled any way, integers past 64 bits, nested or missing values,
    odd samples, odd envelopes): its samples say exactly what orjson's dicts say, with the same cursor,
    or it fails the same way."""
    try:
        want = _orjson_answer(body)
    except (orjson.JSONDecodeError, AceTransient) as exc:
        with pytest.raises(type(exc)):
            decode_timeseries_page(body)
        return
    samples, cursor = decode_timeseries_page(body)
    assert cursor == want[1]
    assert _said(samples) == _said(want[0])


def test_a_well_formed_page_decodes_to_sample_structs() -> None:
    """Objects with string names and times and scalar values are Sample structs (the hot path)."""
    body = b'{"point_samples": [{"name": "p", "time": "t", "value": 1.5}, {"name": "q", "time": "t"}]}'
    samples, cursor = decode_timeseries_page(body)
    assert samples == [Sample("p", "t", 1.5), Sample("q", "t", None)] and cursor is None


@pytest.mark.parametrize(
    "sample",
    [
        '{"name": "p", "time": "t", "value": [1, 2]}',  # nested: orjson's limit decides
        '{"name": "p", "time": "t", "value": 18446744073709551616}',  # orjson: a float
        '{"name": 5, "time": "t"}',  # malformed: the grouper counts it
        '{"name": "p", "time": ""}',  # empty: a Sample never holds one (the grouper relies on it)
        '{"name": "", "time": "t", "value": 1}',
        "null",
        '{"name": "p", "time": "t", "quality": 20E307}',  # orjson refuses the page for it
    ],
)
def test_a_page_with_an_odd_sample_is_orjsons_answer(sample: str) -> None:
    """One sample the typed decoding does not take makes the whole page orjson's dicts, as before."""
    body = f'{{"point_samples": [{{"name": "p", "time": "t0", "value": 1}}, {sample}]}}'.encode()
    try:
        want = orjson.loads(body)["point_samples"]
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            decode_timeseries_page(body)
        return
    samples, _ = decode_timeseries_page(body)
    assert samples == want


def test_sample_fields_reads_structs_and_dicts() -> None:
    """A missing value is None either way; what is not an object has no fields."""
    assert sample_fields(Sample("p", "t")) == ("p", "t", None)
    assert sample_fields({"name": "p", "time": "t"}) == ("p", "t", None)
    assert sample_fields(["p", "t", 1]) is None
