"""The token never appears in a log line, an exception's text, or the client's repr."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
import pytest
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.errors import ConfigError, StreamerError
from tests.unit.ace.conftest import ClientFactory
from tests.unit.ace.helpers import TOKEN, json_response, ts_page

Failure = Callable[[httpx.Request], httpx.Response]


def _raise(exc: Exception) -> Failure:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


FAILURES: dict[str, Failure] = {
    "401 echoing the token": lambda r: httpx.Response(401, text=f"invalid token {TOKEN}"),
    "403 echoing the header": lambda r: httpx.Response(403, text=f"forbidden: {r.headers['authorization']}"),
    "400 json echo": lambda r: httpx.Response(
        400, json={"detail": "bad", "auth": r.headers["authorization"]}
    ),
    "302 redirect": lambda r: httpx.Response(302, headers={"location": f"/login?t={TOKEN}"}, text=TOKEN),
    "500 echoing the token": lambda r: httpx.Response(500, text=f"trace: Bearer {TOKEN}"),
    "429 no retry-after": lambda r: httpx.Response(429, text=TOKEN),
    "timeout": _raise(httpx.ReadTimeout("timed out")),
    "connect error echoing the token": _raise(httpx.ConnectError(f"proxy refused Bearer {TOKEN}")),
    "truncated json": lambda r: httpx.Response(200, content=f'{{"token": "{TOKEN}", "point_samp'.encode()),
    "wrong shape": lambda r: json_response([TOKEN]),
    "repeated cursor": lambda r: json_response(ts_page([], "same")),
}


async def test_token_is_in_no_log_no_error_and_no_repr(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Across all failure paths, with DEBUG logs of streamer/httpx/httpcore captured, no token shows."""
    for name in ("", "httpx", "httpcore", "streamer"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    texts: list[str] = []
    errors: list[BaseException] = []
    for failure in FAILURES.values():
        client = make_client(failure)
        texts += [repr(client), str(client)]
        calls: list[Callable[[], Awaitable[object]]] = [
            client.list_sites,
            partial(client.list_points, "s1"),
            partial(client.get_weather, "s1"),
            partial(_drain, client, "s1"),
        ]
        for call in calls:
            try:
                await call()
            except StreamerError as exc:
                errors.append(exc)
    texts += [
        text for exc in errors for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc)))
    ]
    # Every path failed except weather and a cursor-less listing on the "repeated cursor" server.
    assert len(errors) == len(FAILURES) * 4 - 1
    with pytest.raises(ConfigError) as bad:
        make_client(lambda r: json_response({}), ace_token=SecretStr(TOKEN + "\n"))
    texts.append("".join(traceback.format_exception(bad.value)))
    records = [r.getMessage() + " " + repr(getattr(r, "fields", "")) for r in caplog.records]
    # The capture is real: httpx's own request lines and our retry warnings were recorded.
    assert any(m.startswith("HTTP Request: GET https://ace.test/api/sites/") for m in records)
    assert sum("ace retry" in m for m in records) >= 8
    leaks = [t for t in texts + records + [caplog.text] if TOKEN in t]
    assert leaks == []


async def _drain(client: AceClient, site: str) -> None:
    async for _ in client.iter_timeseries(site, 0, 1_000):
        pass
