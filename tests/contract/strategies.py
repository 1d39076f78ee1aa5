"""Hypothesis strategies of JSON payloads built from the vendor's pydantic models (``aceiot-models``).

Each model field becomes a strategy read off its annotation (``X | None`` may be null, a nested model
recurses, ``datetime`` is an ISO 8601 string); an optional field is either present or absent. Fields
whose vendor validator narrows the annotated type (name rules, ranges) get a narrowed strategy in
``NARROWED``, and every payload is kept only if the vendor's model accepts it, so what comes out is
what the vendor's API may send.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Union, get_args, get_origin

from aceiot_models import BACnetData, PointResponse, PointSample, Site
from aceiot_models.timeseries import WeatherPointSample
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.networks import IPvAnyAddress

Strategy = st.SearchStrategy[Any]

JSON_SCALARS: Strategy = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON: Strategy = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
ISO_TIMES: Strategy = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=ZONES
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12)
POINT_NAMES: Strategy = st.lists(_SEGMENT, min_size=2, max_size=4).map("/".join)
SITE_NAMES: Strategy = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=2, max_size=16)
# Numbers, numeric strings, and what a sensor sends when it has nothing good.
SAMPLE_VALUES: Strategy = (
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(-1e9, 1e9, allow_nan=False)
    | st.floats(-1e9, 1e9, allow_nan=False).map(repr)
    | st.sampled_from(["nan", "NaN", "inf", "-inf", "n/a", "", "12abc"])
)
_OPTIONAL_INT = st.none() | st.integers(0, 2**31)

NARROWED: dict[tuple[type[BaseModel], str], Strategy] = {
    (PointResponse, "name"): POINT_NAMES,
    (PointResponse, "collect_interval"): st.none() | st.integers(1, 86_400),
    (BACnetData, "device_id"): st.none() | st.integers(0, 4_194_303),
    (BACnetData, "object_index"): _OPTIONAL_INT,
    (BACnetData, "scrape_interval"): _OPTIONAL_INT,
    (Site, "name"): SITE_NAMES,
    (Site, "nice_name"): st.none() | st.text(alphabet="ABCDEFGH abcdefgh", min_size=2, max_size=20),
    (Site, "latitude"): st.none() | st.floats(-90, 90),
    (Site, "longitude"): st.none() | st.floats(-180, 180),
    (PointSample, "name"): POINT_NAMES,
    (PointSample, "value"): SAMPLE_VALUES,
    (WeatherPointSample, "value"): SAMPLE_VALUES,
}


def of_annotation(annotation: Any) -> Strategy:
    """JSON values of a field annotated ``annotation``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of(*(of_annotation(arg) for arg in args))
    if origin is list:
        return st.lists(of_annotation(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(of_annotation(args[0]), of_annotation(args[1]), max_size=3)
    simple: dict[Any, Strategy] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.integers(-(2**53), 2**53),
        float: st.floats(allow_nan=False, allow_infinity=False),
        str: st.text(max_size=16),
        datetime: ISO_TIMES,
        IPvAnyAddress: st.ip_addresses().map(str),
        Any: JSON,
    }
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return payloads(annotation)
    raise TypeError(f"no strategy for {annotation!r}")


def _accepted(model: type[BaseModel], payload: dict[str, Any]) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


def payloads(model: type[BaseModel], **fixed: Strategy) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects ``model`` accepts: every required field, each optional one present or absent;
    ``fixed`` replaces the strategy of the named fields."""
    required: dict[str, Strategy] = {}
    optional: dict[str, Strategy] = {}
    for name, field in model.model_fields.items():
        narrowed = next((s for (m, f), s in NARROWED.items() if f == name and issubclass(model, m)), None)
        strategy = fixed.get(name, narrowed if narrowed is not None else of_annotation(field.annotation))
        (required if field.is_required() else optional)[name] = strategy
    combined = st.fixed_dictionaries(required, optional=optional)
    return combined.filter(lambda payload: _accepted(model, payload))
