"""Weather bodies of both shapes become weather.* samples."""

from __future__ import annotations

import pytest

from streamer.ace.retry import AceTransient
from streamer.ace.weather import WEATHER_POINTS, WeatherSample, parse_weather
from streamer.times import ms_to_iso

T = "2024-01-01T00:05:00Z"


def test_object_shape() -> None:
    """Each field as {value,time,units,source} maps to its weather.* point with its own time."""
    body = {
        field: {"value": 10.0 + i, "time": T, "units": "x", "source": "owm"}
        for i, field in enumerate(WEATHER_POINTS)
    }
    samples = parse_weather(body)
    assert samples == [WeatherSample(point, T, 10.0 + i) for i, point in enumerate(WEATHER_POINTS.values())]
    assert [s.point for s in samples][-2:] == ["weather.wind_direction", "weather.wet_bulb"]


def test_plain_shape_with_iso_time() -> None:
    """Plain numbers share the body's `time`."""
    samples = parse_weather({"temp": 72.5, "humidity": 40, "time": T})
    assert samples == [
        WeatherSample("weather.temperature", T, 72.5),
        WeatherSample("weather.humidity", T, 40.0),
    ]


def test_plain_shape_with_epoch_dt() -> None:
    """Plain numbers with `dt` epoch seconds get an ISO UTC millisecond time."""
    samples = parse_weather({"wind_deg": 270, "dt": 1704067500})
    assert samples == [WeatherSample("weather.wind_direction", "2024-01-01T00:05:00.000Z", 270.0)]
    assert samples[0].time_iso == "2024-01-01T00:05:00.000Z"


def test_missing_null_and_non_numeric_fields_are_skipped() -> None:
    """Null, missing, non-numeric, boolean and non-finite fields are skipped; numeric strings are read."""
    body = {
        "temp": None,
        "feels_like": "warm",
        "pressure": "1013.2",
        "humidity": True,
        "dew_point": "nan",
        "clouds": {"value": None, "time": T},
        "wind_speed": {"value": "inf", "time": T},
        "wet_bulb": {"value": "55.1", "time": T},
        "time": T,
    }
    assert parse_weather(body) == [
        WeatherSample("weather.pressure", T, 1013.2),
        WeatherSample("weather.wet_bulb", T, 55.1),
    ]


def test_object_time_falls_back_to_shared_time_and_no_time_skips() -> None:
    """An object without its own time uses the shared one; with no time anywhere the field is skipped."""
    assert parse_weather({"temp": {"value": 1.0}, "dt": 0}) == [
        WeatherSample("weather.temperature", "1970-01-01T00:00:00.000Z", 1.0)
    ]
    assert parse_weather({"temp": 72.5}) == []


def test_non_object_body_is_transient() -> None:
    """A weather body that is not an object raises (the producer isolates weather failures)."""
    with pytest.raises(AceTransient):
        parse_weather(["temp", 72.5])


def test_iso_from_ms_format() -> None:
    """Query times are UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`, exact to the millisecond."""
    assert ms_to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert ms_to_iso(1_704_067_200_123) == "2024-01-01T00:00:00.123Z"
    assert ms_to_iso(1_704_067_199_999) == "2023-12-31T23:59:59.999Z"
