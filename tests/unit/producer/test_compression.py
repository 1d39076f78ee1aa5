"""The producer's codec and level: applied to aiokafka's batches, and still read back by any consumer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cramjam
import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record import default_records
from aiokafka.record.default_records import DefaultRecordBatch

from streamer.errors import ConfigError
from streamer.producer import compression
from streamer.settings import load_settings

CODEC_IDS = {"zstd": DefaultRecordBatch.CODEC_ZSTD, "lz4": DefaultRecordBatch.CODEC_LZ4}
RECORDS = [(f"site/p{i}".encode(), b'{"samples":[["2024-01-01T00:00:00Z",%d.5]]}' % i) for i in range(300)]


@pytest.fixture(autouse=True)
def _restore_codecs() -> Iterator[None]:
    """use_level is process-wide: each test leaves aiokafka's encode functions as it found them."""
    modules = compression._builder_modules()
    saved = [(m, name, getattr(m, name)) for m in modules for name in ("zstd_encode", "lz4_encode")]
    yield
    for module, name, function in saved:
        setattr(module, name, function)


def _batch(codec: str) -> bytes:
    builder = BatchBuilder(1 << 20, CODEC_IDS[codec])
    for key, value in RECORDS:
        assert builder.append(timestamp=None, key=key, value=value) is not None
    return bytes(builder._build())


def _read(batch: bytes) -> list[tuple[Any, Any]]:
    return [(r.key, r.value) for r in DefaultRecordBatch(bytearray(batch))]


@pytest.mark.parametrize(("codec", "low", "high"), [("zstd", -7, 19), ("lz4", 0, 16)])
def test_the_level_reaches_aiokafkas_batches(codec: str, low: int, high: int) -> None:
    """A batch built after use_level is compressed at that level (its size changes with the level and
    its payload is the codec's output at that level), and reads back to the same records."""
    sizes = {}
    for level in (low, high):
        assert compression.use_level(codec, level) == level
        batch = _batch(codec)
        assert _read(batch) == RECORDS
        sizes[level] = len(batch)
    assert sizes[high] < sizes[low]
    if codec == "zstd":  # the payload after the batch header is zstd's frame at that level
        compression.use_level("zstd", 5)
        batch = _batch("zstd")
        frame = batch[61:]  # after the v2 batch header (61 bytes)
        assert frame == bytes(cramjam.zstd.compress(bytes(cramjam.zstd.decompress(frame)), level=5))


def test_unset_level_is_the_measured_default() -> None:
    """No level set: lz4 at 1 (not aiokafka's 9: LZ4-HC), zstd at Kafka's 3, snappy and none as they
    are."""
    assert compression.use_level("lz4", None) == 1
    assert default_records.lz4_encode.keywords == {"level": 1}
    assert compression.use_level("zstd", None) == 3
    assert compression.use_level("snappy", None) is None
    assert compression.compression_type("none") is None and compression.compression_type("lz4") == "lz4"


@pytest.mark.parametrize(
    ("codec", "level", "message"),
    [
        ("snappy", 1, "snappy has no levels"),
        ("zstd", 23, "zstd takes -7..22"),
        ("lz4", -1, "lz4 takes 0..16"),
    ],
)
def test_a_level_the_codec_cannot_take_is_refused(codec: str, level: int, message: str) -> None:
    """A level for a codec without levels, or out of the codec's range, fails at start-up, named."""
    with pytest.raises(ConfigError, match=message):
        load_settings(producer_compression=codec, producer_compression_level=level)
