"""One HTTP attempt against the ACE API: send, classify the outcome, decode with orjson.

Everything that can go wrong becomes one of three things: ``AceTransient`` (retry), ``AceAuthError``
(401: stop the site), ``AceClientError`` (other 4xx, or a status the API never sends). The token lives
only in ``BearerAuth``, which adds it to each outgoing request and prints as a mask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from streamer.ace.retry import AceTransient, parse_retry_after
from streamer.errors import AceAuthError, AceClientError, ConfigError
from streamer.metrics import API_REQUEST_SECONDS

EXCERPT_CHARS = 200
GATEWAY_STATUSES = frozenset({502, 503, 504})
QueryParams = Mapping[str, str | int]


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


def check_status(response: httpx.Response, endpoint: Endpoint, auth: BearerAuth, now_s: float) -> None:
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
    if status >= 500:
        shrink = status in GATEWAY_STATUSES
        raise AceTransient("server_error", f"HTTP {status}", shrink=shrink, retry_after_s=retry_after)
    raise AceClientError(
        f"{endpoint.describe()}: HTTP {status}: {excerpt(response.content, auth.redact)}", status=status
    )


async def get_json(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    params: QueryParams,
    *,
    auth: BearerAuth,
    timeout_s: float,
    wall_clock: Callable[[], float] = time.time,
) -> tuple[Any, int]:
    """One GET: the decoded body and its size in bytes.

    ``timeout_s`` bounds the whole attempt, body included: httpx's own timeouts are per network
    operation, so a server trickling a large page would otherwise never time out.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            response = await http.get(endpoint.path, params=params)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise AceTransient("timeout", f"no complete answer within {timeout_s:g}s", shrink=True) from exc
    except httpx.RequestError as exc:  # refused, reset, a body cut short mid-transfer, bad encoding
        text = f"{type(exc).__name__}: {exc}"
        safe = auth.redact(text)
        # A proxy may echo the request back: then the cause itself must not travel in the chain.
        raise AceTransient("connection", safe, shrink=True) from (exc if safe == text else None)
    finally:
        API_REQUEST_SECONDS.labels(endpoint=endpoint.label).observe(time.perf_counter() - started)
    check_status(response, endpoint, auth, wall_clock())
    content = response.content
    try:
        return orjson.loads(content), len(content)
    except orjson.JSONDecodeError as exc:
        raise AceTransient("invalid_json", f"{exc} ({len(content)} bytes)", shrink=True) from exc
