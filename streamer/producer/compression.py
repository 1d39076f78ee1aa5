"""The codec and level the producer compresses its Kafka record batches with.

aiokafka compresses each batch in the event loop, at a level a caller cannot choose: lz4 at 9 (LZ4-HC,
~15x the CPU of zstd here), zstd at 3, gzip at 9. Measured on the simulator's 24 h backfill
(bench/producer.py, README "Producer compression"), zstd 3 was ~11 % of the producer's CPU; the
levels below buy CPU with bytes on the broker. ``use_level`` is the one contact with aiokafka's
internals: the batch builders (Cython and pure Python alike) call the codec's encode function through
their module's globals, so it is replaced there by one with the chosen level. Process-wide: every
aiokafka producer of the process compresses that codec at that level from then on; any level is
decoded by every consumer (levels are the compressor's choice, not part of the format).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiokafka import codec
from aiokafka.record import default_records

# Where a level goes in each codec's encode function; snappy and none have no level.
_LEVELS: dict[str, tuple[str, str]] = {
    "zstd": ("zstd_encode", "level"),
    "lz4": ("lz4_encode", "level"),
    "gzip": ("gzip_encode", "compresslevel"),
}
DEFAULT_LEVELS: dict[str, int] = {"zstd": 3, "lz4": 1, "gzip": 6}
"""The level of each codec when ``producer_compression_level`` is unset (measured: README)."""


def _builder_modules() -> list[Any]:
    modules: list[Any] = [default_records]
    try:
        from aiokafka.record._crecords import default_records as compiled
    except ImportError:  # aiokafka built without its C extensions
        return modules
    return [*modules, compiled]


def compression_type(compression: str) -> str | None:
    """aiokafka's ``compression_type`` for the setting's value."""
    return None if compression == "none" else compression


def level_for(compression: str, level: int | None) -> int | None:
    """The level ``compression`` is used at (None: the codec has none)."""
    if compression not in _LEVELS:
        return None
    return DEFAULT_LEVELS[compression] if level is None else level


def use_level(compression: str, level: int | None) -> int | None:
    """Make aiokafka's batch builders compress ``compression`` at ``level`` (None: its default here);
    returns the level in use (None for a codec without levels, which is left as it is)."""
    chosen = level_for(compression, level)
    if chosen is None:
        return None
    name, keyword = _LEVELS[compression]
    original: Callable[..., bytes] = getattr(codec, name)
    encode = functools.partial(original, **{keyword: chosen})
    for module in _builder_modules():
        setattr(module, name, encode)
    return chosen
