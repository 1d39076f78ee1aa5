"""Current weather of a site, fixed within each 5-minute bucket, in either of the API's two shapes."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from streamer.sim.config import SimConfig
from streamer.times import ms_to_iso

BUCKET_MS = 300_000
# field -> unit; the client maps these to weather.* points
FIELDS: dict[str, str] = {
    "temp": "degF",
    "feels_like": "degF",
    "pressure": "hPa",
    "humidity": "%",
    "dew_point": "degF",
    "clouds": "%",
    "wind_speed": "mph",
    "wind_deg": "deg",
    "wet_bulb": "degF",
}


def weather_shape(config: SimConfig, site: str) -> str:
    """``object``, ``flat_time`` or ``flat_dt``: by site position unless the config fixes the shape."""
    position = config.sites.index(site)
    if config.weather_shape == "object":
        return "object"
    if config.weather_shape == "flat":
        return ("flat_time", "flat_dt")[position % 2]
    return ("object", "flat_time", "flat_dt")[position % 3]


def weather_values(config: SimConfig, site: str, now_ms: int) -> tuple[int, dict[str, float]]:
    """(bucket start in ms, field values) for the bucket holding ``now_ms``; two decimals at most."""
    bucket = now_ms // BUCKET_MS
    seed = hashlib.blake2b(f"{config.seed}\x1f{site}\x1f{bucket}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(seed, "little"))
    hour = (bucket * BUCKET_MS // 3_600_000) % 24
    temp = 55 + 15 * math.sin((hour - 9) * math.pi / 12) + rng.uniform(-2, 2)
    humidity = rng.uniform(30, 90)
    dew_point = temp - (100 - humidity) / 2.5
    values = {
        "temp": temp,
        "feels_like": temp - rng.uniform(0, 4),
        "pressure": rng.uniform(1000, 1030),
        "humidity": humidity,
        "dew_point": dew_point,
        "clouds": rng.uniform(0, 100),
        "wind_speed": rng.uniform(0, 25),
        "wind_deg": rng.uniform(0, 359),
        "wet_bulb": (temp + dew_point) / 2,
    }
    return bucket * BUCKET_MS, {k: round(v, 2) for k, v in values.items()}


def weather_body(config: SimConfig, site: str, now_ms: int) -> dict[str, Any]:
    """The weather response for ``site`` at ``now_ms``."""
    at_ms, values = weather_values(config, site, now_ms)
    shape = weather_shape(config, site)
    if shape == "object":
        at = ms_to_iso(at_ms)
        return {
            k: {
                "name": f"{site}/weather/{k}",
                "value": v,
                "time": at,
                "units": FIELDS[k],
                "source": "streamer-sim",
            }
            for k, v in values.items()
        }
    body: dict[str, Any] = dict(values)
    if shape == "flat_time":
        body["time"] = ms_to_iso(at_ms)
    else:
        body["dt"] = at_ms // 1000
    return body
