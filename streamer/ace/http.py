"""One HTTP attempt against the ACE API: send, classify the outcome, decode (orjson unless told).

Everything that can go wrong becomes one of three things: ``AceTransient`` (retry), ``AceAuthError``
(401: stop the site), ``AceClientError`` (other 4xx, or a status the API never sends). The token lives
only in ``BearerAuth``, which adds it to each outgoing request and prints as a mask.

The body is streamed and its *decoded* bytes counted against a cap, so neither a huge answer nor a
small gzip bomb can take the process's memory. Only failures of the transfer itself (timeout, broken
or cut connection, 413, a gateway's 504) mark the attempt ``shrink``: a 502, 503 or an invalid but
complete body says nothing about the page size.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import zlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import orjson
from pydantic import SecretStr

from streamer.ace.retry import AceTransient, parse_retry_after
from streamer.errors import AceAuthError, AceClientError, ConfigError
from streamer.metrics import API_LIMITS, API_REQUEST_SECONDS

EXCERPT_CHARS = 200
SIZE_STATUSES = frozenset({413, 504})
"""Statuses that say the answer was too big or too slow to come through: a smaller page may pass."""
QueryParams = Mapping[str, str | int]


class Answer(NamedTuple):
    """One decoded response: the body, its decoded size, and the API's clock (``Date``) if it sent it."""

    body: Any
    size: int
    date_s: float | None


class BearerAuth(httpx.Auth):
    """``authorization: Bearer <token>`` on every request; the token never leaves the ``SecretStr``
    except into that header."""

    def __init__(self, token: SecretStr) -> None:
        value = token.get_secret_value()
        if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ConfigError("STREAMER_ACE_TOKEN: empty, or holds whitespace or control characters")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def redact(self, text: str) -> str:
        """``text`` with the token masked: bodies may echo what the server was sent."""
        return text.replace(self._token.get_secret_value(), "**********")

    def __repr__(self) -> str:
        return "BearerAuth(token=**********)"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API call: a bounded metric ``label``, the URL ``path`` and the site it belongs to."""

    label: str
    path: str
    site: str | None

    def describe(self) -> str:
        return f"GET {self.path}" + (f" (site {self.site})" if self.site else "")


def excerpt(body: bytes, redact: Callable[[str], str]) -> str:
    """A short, single-line, token-free excerpt of a response body for error messages."""
    text = " ".join(body[: EXCERPT_CHARS * 8].decode("utf-8", errors="replace").split())
    text = redact(text)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def check_status(
    response: httpx.Response, content: bytes, endpoint: Endpoint, auth: BearerAuth, now_s: float
) -> None:
    """Raise the error a non-2xx status stands for; return quietly on 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 401:
        whose = f" for site {endpoint.site}" if endpoint.site else ""
        raise AceAuthError(
            f"ACE API rejected the token{whose} (401 on {endpoint.path}): wrong or expired; "
            "sync stops until the token is replaced"
        )
    retry_after = parse_retry_after(response.headers.get("retry-after"), now_s)
    if status == 429:
        raise AceTransient("rate_limited", "HTTP 429", retry_after_s=retry_after)
    if status == 413:
        raise AceTransient("too_large", "HTTP 413: the answer was too large to send", shrink=True)
    if status >= 500:
        shrink = status in SIZE_STATUSES
        raise AceTransient("server_error", f"HTTP {status}", shrink=shrink, retry_after_s=retry_after)
    raise AceClientError(
        f"{endpoint.describe()}: HTTP {status}: {excerpt(content, auth.redact)}", status=status
    )


def parse_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP ``Date`` header; ``None`` when absent or unusable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


def over_cap(reason: str, detail: str) -> AceTransient:
    """A response refused by one of the client's caps: counted by reason, retried like a broken one."""
    API_LIMITS.labels(reason=reason).inc()
    return AceTransient(reason, detail, shrink=True)


ACCEPT_ENCODING = "gzip, deflate"
"""What the client asks for: the encodings ``read_capped`` decodes itself, a bounded step at a time."""
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _CappedBody:
    """Collects a body's decoded bytes, refusing the one that would pass ``max_bytes``."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.encoding, self.max_bytes, self.size = encoding, max_bytes, 0
        self.chunks: list[bytes] = []
        self.inflate = zlib.decompressobj(_WBITS[encoding]) if encoding != "identity" else None

    def feed(self, raw: bytes) -> None:
        data = raw
        while True:
            if self.inflate is not None:  # never more than the room left (+1 to notice passing it)
                data = self.inflate.decompress(data, self.max_bytes - self.size + 1)
            self.size += len(data)
            if self.size > self.max_bytes:
                raise over_cap("body_too_large", f"body over the {self.max_bytes}-byte cap (decoded)")
            self.chunks.append(data)
            if self.inflate is None or not self.inflate.unconsumed_tail:
                return
            data = self.inflate.unconsumed_tail

    def finish(self) -> bytes:
        if self.inflate is not None and not self.inflate.eof:
            raise AceTransient("invalid_body", f"{self.encoding} body ends before its compressed stream does")
        return b"".join(self.chunks)


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, refused as soon as it would grow past ``max_bytes``.

    Decoding happens here, not in httpx, with zlib's ``max_length``: one compressed chunk of a gzip
    bomb may stand for a thousand times its size, and is never inflated further than the cap.
    """
    if response.is_stream_consumed:  # built in memory (a test's MockTransport): already decoded
        if len(response.content) > max_bytes:
            raise over_cap("body_too_large", f"body over the {max_bytes}-byte cap (decoded)")
        return response.content
    encoding = response.headers.get("content-encoding", "identity").strip().lower() or "identity"
    declared = response.headers.get("content-length", "")
    if encoding == "identity" and declared.isdigit() and int(declared) > max_bytes:
        raise over_cap("body_too_large", f"Content-Length {declared} over the {max_bytes}-byte cap")
    if encoding != "identity" and encoding not in _WBITS:
        raise AceTransient("invalid_body", f"unsupported Content-Encoding {encoding[:40]!r}")
    body = _CappedBody(encoding, max_bytes)
    try:
        async for raw in response.aiter_raw():
            body.feed(raw)
    except zlib.error as exc:
        raise AceTransient("invalid_body", f"undecodable {encoding} body: {exc}") from exc
    return body.finish()


async def get_json(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    params: QueryParams,
    *,
    auth: BearerAuth,
    timeout_s: float,
    max_bytes: int,
    wall_clock: Callable[[], float] = time.time,
    decode: Callable[[bytes], Any] = orjson.loads,
) -> Answer:
    """One GET: the body as ``decode`` reads it, its size in bytes and the API's ``Date``.

    ``timeout_s`` bounds the whole attempt, body included: httpx's own timeouts are per network
    operation, so a server trickling a large page would otherwise never time out.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s), http.stream("GET", endpoint.path, params=params) as response:
            content = await read_capped(response, max_bytes)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise AceTransient("timeout", f"no complete answer within {timeout_s:g}s", shrink=True) from exc
    except httpx.RequestError as exc:  # refused, reset, a body cut short mid-transfer, bad encoding
        text = f"{type(exc).__name__}: {exc}"
        safe = auth.redact(text)
        # A proxy may echo the request back: then the cause itself must not travel in the chain.
        raise AceTransient("connection", safe, shrink=True) from (exc if safe == text else None)
    finally:
        API_REQUEST_SECONDS.labels(endpoint=endpoint.label).observe(time.perf_counter() - started)
    check_status(response, content, endpoint, auth, wall_clock())
    date_s = parse_date(response.headers.get("date"))
    try:
        return Answer(decode(content), len(content), date_s)
    except orjson.JSONDecodeError as exc:
        # The transfer completed (a cut one raised above): the answer itself is broken, not too big.
        raise AceTransient("invalid_json", f"{exc} ({len(content)} bytes)") from exc
