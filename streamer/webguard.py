"""The one policy of every HTTP listener (query API, processor web server, producer /metrics).

A request is answered only when, in this order:

1. its ``Host`` is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``), the listener's own
   specific bind address, or in ``api_allowed_hosts`` (any port), or it carries the token: a page on a
   rebinding domain (``attacker.example`` resolving to 127.0.0.1) is refused although the browser thinks
   it is same-origin;
2. a browser's ``Origin`` (and ``Sec-Fetch-Site``) says the request comes from this origin or one in
   ``api_allowed_origins``: another site's page cannot make the browser send it anything (top-level
   navigations to a page excepted); the allowed ones get CORS headers, and their preflights a 204;
3. a POST carries ``Content-Type: application/json``: no HTML form or no-preflight ``fetch`` can;
4. with a token configured (``Settings.api_auth_required``), every path but the public ones carries
   ``Authorization: Bearer <token>``.

Refusals are JSON ``{"error", "status"}``. ``request[AUTHENTICATED]`` tells handlers whether the caller
presented the token (``/health`` shows details only then).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from streamer.errors import ConfigError
from streamer.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTHENTICATED: Final = web.RequestKey("streamer_authenticated", bool)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::", "[::]"})


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, bind_host: str, setting: str) -> None:
    """Refuse to listen beyond this machine without a token (``setting`` names the bind address)."""
    if not is_loopback(bind_host) and not settings.api_auth_required:
        raise ConfigError(
            f"{setting}={bind_host} would listen beyond this machine without a token: "
            f"set STREAMER_API_TOKEN (or {setting}=127.0.0.1)"
        )


@dataclass(frozen=True)
class Policy:
    """What one listener accepts; ``public`` paths need no token."""

    token: bytes | None
    hosts: frozenset[str]
    origins: frozenset[str]
    public: Collection[str]
    public_prefixes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        settings: Settings,
        bind_host: str,
        public: Collection[str],
        public_prefixes: tuple[str, ...] = (),
    ) -> Policy:
        token = None
        if settings.api_auth_required and settings.api_token is not None:
            token = settings.api_token.get_secret_value().encode()
        hosts = set(settings.api_allowed_hosts)
        if bind_host.lower() not in _WILDCARD_BINDS:
            hosts.add(_bracketed(bind_host.lower()))
        return cls(token, frozenset(hosts), frozenset(settings.api_allowed_origins), public, public_prefixes)

    def is_public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header without its port, lower-case; None when malformed."""
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        name, port = text[: end + 1], text[end + 2 :]
    else:
        name, _, port = text.partition(":")
    if not name or (port and not port.isdigit()):
        return None
    return name.rstrip(".")


def refusal(policy: Policy, request: web.Request) -> tuple[int, str] | None:
    """Why ``request`` must not be served (status, message), or None: the policy as one pure check."""
    headers = request.headers
    host = host_name(headers.get("Host", ""))
    # A caller presenting the token is no rebinding page (a bearer token is never sent by a browser on
    # its own): Prometheus scraping a container by its IP or service name passes.
    if host is None or not (is_loopback(host) or host in policy.hosts or authenticated(policy, request)):
        return 403, "Host not served here: use a loopback name or one in STREAMER_API_ALLOWED_HOSTS"
    origin = headers.get("Origin")
    own = f"{request.scheme}://{headers['Host'].strip().lower()}"
    if origin is not None and origin.lower() != own and origin.lower() not in policy.origins:
        return 403, "cross-origin request refused: add the origin to STREAMER_API_ALLOWED_ORIGINS"
    site = headers.get("Sec-Fetch-Site", "")
    navigation = headers.get("Sec-Fetch-Mode") == "navigate" and request.method == "GET"
    if site in ("cross-site", "same-site") and origin is None and not navigation:
        return 403, "cross-site request refused (Sec-Fetch-Site)"
    if request.method not in _SAFE_METHODS and request.content_type != "application/json":
        return 415, "send the body as JSON with Content-Type: application/json"
    return None


def authenticated(policy: Policy, request: web.Request) -> bool:
    if policy.token is None:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), policy.token)


def error_response(status: int, message: str) -> web.Response:
    body = orjson.dumps({"error": message, "status": status})
    return web.Response(body=body, status=status, content_type="application/json")


def middleware(policy: Policy) -> Middleware:
    """The aiohttp middleware enforcing ``policy`` on every route of an application."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "").lower()
        allowed = origin in policy.origins  # a foreign origin listed in api_allowed_origins
        refused = refusal(policy, request)
        response: web.StreamResponse
        if refused is not None:
            response = error_response(*refused)
        elif allowed and request.method == "OPTIONS":  # its CORS preflight
            response = web.Response(status=204, headers=_PREFLIGHT)
        else:
            request[AUTHENTICATED] = known = authenticated(policy, request)
            if policy.token is not None and not known and not policy.is_public(request.path):
                response = error_response(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
            else:
                response = await handler(request)
        if allowed:  # its scripts may read the answer, refusals included
            response.headers.update(_cors(origin))
        return response

    return guard


_PREFLIGHT: Final = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def install(app: web.Application, policy: Policy) -> None:
    """Put the guard first on ``app`` (before the server starts: aiohttp freezes its middlewares)."""
    app.middlewares.insert(0, middleware(policy))
