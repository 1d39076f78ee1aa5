"""Helpers shared by the ACE client tests."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from streamer.ace.pagination import sample_fields

TOKEN = "tok-SECRET-7f3a9c1e5b"
BASE_URL = "https://ace.test/api"

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def ts_page(
    samples: list[dict[str, Any]], cursor: str | None, has_more: bool | None = True
) -> dict[str, Any]:
    body: dict[str, Any] = {"point_samples": samples, "next_cursor": cursor}
    if has_more is not None:
        body["has_more"] = has_more
    return body


def sample(name: str, time: str = "2024-01-01T00:00:00Z", value: Any = "72.5") -> dict[str, Any]:
    return {"name": name, "time": time, "value": value}


def said(samples: list[Any]) -> list[dict[str, Any]]:
    """What each of a page's samples says (a ``Sample`` or an orjson dict), as a name/time/value dict."""
    out = []
    for s in samples:
        fields = sample_fields(s)
        assert fields is not None, s
        out.append(dict(zip(("name", "time", "value"), fields, strict=True)))
    return out
