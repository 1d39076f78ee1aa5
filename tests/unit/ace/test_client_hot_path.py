"""Hot path: a 50,000-sample page is decoded once and handed over with no per-sample work."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

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
    """The yielded page.samples is the very list orjson produced: no copy, no per-sample model."""
    body = _body()
    decoded: list[Any] = []
    real_loads = orjson.loads

    def spy(data: bytes) -> Any:
        decoded.append(real_loads(data))
        return decoded[-1]

    monkeypatch.setattr(orjson, "loads", spy)  # the name streamer.ace.http calls
    client = make_client(lambda r: httpx.Response(200, content=body))
    pages = [page async for page in client.iter_timeseries("s1", 0, 1_000)]
    assert len(decoded) == 1 and len(pages) == 1
    assert pages[0].samples is decoded[0]["point_samples"]
    assert len(pages[0].samples) == N
    assert pages[0].samples[1] == {"name": "s1/ahu_1/sat", "time": "2024-01-01T00:00:00Z", "value": "1.5"}
