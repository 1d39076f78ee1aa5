"""An httpx transport over aiohttp's client: the bytes of a timeseries page for a quarter of the CPU.

httpx's own transport (httpcore, h11 and anyio, all in Python) spent ~15 ms of CPU receiving each
6 MB, 50,000-sample page from the simulator, about as much as decoding it; aiohttp's client (a C HTTP
parser and an asyncio protocol) ~4 ms. The rest of the client keeps httpx's API (requests, auth,
``MockTransport`` in tests); only the wire goes through aiohttp. What the client relies on is kept:
the body comes raw (``auto_decompress=False``: ``http.read_capped`` inflates it, a bounded step at a
time), no redirect is followed, the URL is sent as httpx encoded it, certificates are checked against
certifi's bundle (as httpx does), each network operation times out after ``timeout_s``, and aiohttp's
failures become the httpx errors they stand for. Unlike httpx's, it takes no proxy from the
environment (aiohttp's option to would also read ~/.netrc in a thread on every request): a proxy is
the ``ace_proxy_url`` setting, else the client connects to ``ace_base_url`` directly.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from types import TracebackType

import aiohttp
import certifi
import httpx
from yarl import URL


class _Body(httpx.AsyncByteStream):
    """The response body, raw, as aiohttp receives it; closing it hands the connection back."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:  # read in part (a cap passed, a failure): the connection cannot serve another request
            self._response.close()


class _translated:
    """aiohttp's and asyncio's failures as the httpx errors ``http.get_json`` classifies."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, httpx.HTTPError | asyncio.CancelledError):
            return
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
            raise httpx.ReadTimeout(text) from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise httpx.ConnectError(text) from exc
        if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
            raise httpx.RemoteProtocolError(text) from exc  # a body cut short, a dropped connection
        if isinstance(exc, aiohttp.ClientError | OSError):
            raise httpx.ReadError(text) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent with one aiohttp session (opened on the first request, in its loop)."""

    def __init__(self, timeout_s: float, proxy: str | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls),
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,  # True reads ~/.netrc in a thread on every request
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        with _translated():
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=list(request.headers.multi_items()),
                data=request.content or None,
                allow_redirects=False,
                proxy=self._proxy,
            )
        return httpx.Response(
            response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_Body(response),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
