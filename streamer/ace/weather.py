"""The two shapes of ``GET /sites/{site}/weather`` → ``weather.*`` samples (pure).

Shape A: each field an object ``{"value", "time", "units", "source"}``.
Shape B: each field a plain number, one shared timestamp in ``time`` (ISO) or ``dt`` (epoch seconds).
Missing, null, non-numeric and non-finite fields are skipped, as the seed did; so is a field with no
timestamp anywhere (a made-up time would be a wrong sample).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from streamer.ace.retry import AceTransient
from streamer.times import ms_to_iso

WEATHER_POINTS: dict[str, str] = {
    "temp": "weather.temperature",
    "feels_like": "weather.feels_like",
    "pressure": "weather.pressure",
    "humidity": "weather.humidity",
    "dew_point": "weather.dew_point",
    "clouds": "weather.clouds",
    "wind_speed": "weather.wind_speed",
    "wind_deg": "weather.wind_direction",
    "wet_bulb": "weather.wet_bulb",
}


class WeatherSample(NamedTuple):
    point: str
    time: str
    value: float

    @property
    def time_iso(self) -> str:
        return self.time


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _time(value: Any) -> str | None:
    """An ISO string as given, or epoch seconds (``dt``) turned into ISO; else ``None``."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    seconds = _number(value)
    if seconds is None:
        return None
    try:
        return ms_to_iso(round(seconds * 1000))  # a float of seconds: nearest ms undoes its binary error
    except (OverflowError, OSError, ValueError):
        return None


def parse_weather(body: Any) -> list[WeatherSample]:
    """Every usable weather field of either shape, in the order of ``WEATHER_POINTS``."""
    if not isinstance(body, dict):
        raise AceTransient("invalid_body", f"weather body is a {type(body).__name__}, not an object")
    shared = _time(body.get("time")) or _time(body.get("dt"))
    samples: list[WeatherSample] = []
    for field, point in WEATHER_POINTS.items():
        raw = body.get(field)
        if isinstance(raw, dict):
            value = _number(raw.get("value"))
            when = _time(raw.get("time")) or _time(raw.get("dt")) or shared
        else:
            value, when = _number(raw), shared
        if value is not None and when is not None:
            samples.append(WeatherSample(point, when, value))
    return samples
