"""Hot path: a 50,000-sample page is decoded once and handed over with no per-sample work."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from streamer.ace import pagination
from streamer.ace.pagination import Sample
from tests.unit.ace.conftest import ClientFactory

N = 50_000


def _body() -> bytes:
    samples = [
        {
            "name": f"s1/ahu_{i % 500}/sat",
            "time": f"2024-01-01T00:{(i // 500) % 60:02d}:00Z",
            "value": f"{i % 97}.5",
        }
        for i in range(N)
    ]
    return orjson.dumps({"point_samples": samples, "next_cursor": None, "has_more": False})


async def test_page_samples_are_the_decoded_list_itself(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well-formed page is decoded once, straight into Sample structs, and the yielded page.samples
    is that very list: no orjson pass, no copy, no per-sample model."""
    body = _body()
    decoded: list[Any] = []
    real = pagination._PAGE

    class Spy:
        def decode(self, data: bytes) -> Any:
            decoded.append(real.decode(data))
            return decoded[-1]

    def no_orjson(data: bytes) -> Any:
        raise AssertionError("a well-formed page went through orjson too")

    monkeypatch.setattr(pagination, "_PAGE", Spy())
    monkeypatch.setattr(orjson, "loads", no_orjson)
    client = make_client(lambda r: httpx.Response(200, content=body))
    pages = [page async for page in client.iter_timeseries("s1", 0, 1_000)]
    assert len(decoded) == 1 and len(pages) == 1
    assert pages[0].samples is decoded[0].point_samples
    assert len(pages[0].samples) == N
    assert pages[0].samples[1] == Sample("s1/ahu_1/sat", "2024-01-01T00:00:00Z", "1.5")
