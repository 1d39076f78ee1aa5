"""The listeners' policy as a pure check (streamer.webguard.refusal): which Host, Origin, fetch metadata
and content type pass, for the rebinding and cross-site tricks a browser can be made to play."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from streamer.errors import ConfigError
from streamer.settings import Settings, load_settings
from streamer.webguard import Policy, refusal


def _policy(settings: Settings, bind: str = "127.0.0.1") -> Policy:
    return Policy.of(settings, bind, frozenset({"/health"}))


def _status(policy: Policy, method: str = "GET", **headers: str) -> int | None:
    request = make_mocked_request(method, "/api/v1/sites", headers=headers)
    refused = refusal(policy, request)
    return None if refused is None else refused[0]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:6066", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("[::1]:6066", True),
        ("127.3.4.5", True),
        ("streamer.internal:8080", True),  # configured
        ("attacker.example:6066", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.attacker.example", False),
        ("[::1", False),
        ("127.0.0.1:x", False),
        ("", False),
        ("0.0.0.0:6066", False),
        ("10.0.0.7:8080", False),
    ],
)
def test_host_header(host: str, allowed: bool) -> None:
    """Only loopback names and STREAMER_API_ALLOWED_HOSTS (any port) are served: rebinding names,
    look-alikes and malformed Hosts get 403."""
    policy = _policy(load_settings(api_allowed_hosts="streamer.internal"))
    assert _status(policy, Host=host) == (None if allowed else 403)


def test_a_caller_with_the_token_may_use_any_host_name() -> None:
    """Prometheus scrapes a container by IP or service name with the token: served; without it, or with
    a wrong one (what a rebinding page could send), 403."""
    policy = _policy(load_settings(api_token="s3cret-token-value"), "0.0.0.0")
    assert _status(policy, Host="172.18.0.5:9464", Authorization="Bearer s3cret-token-value") is None
    assert _status(policy, Host="processor:6066", Authorization="Bearer wrong") == 403
    assert _status(policy, Host="processor:6066") == 403


def test_specific_bind_address_is_its_own_allowed_host() -> None:
    """Bound to 10.0.0.7, requests to http://10.0.0.7:port/ pass; a wildcard bind adds nothing."""
    settings = load_settings()
    assert _status(_policy(settings, "10.0.0.7"), Host="10.0.0.7:8080") is None
    assert _status(_policy(settings, "0.0.0.0"), Host="10.0.0.7:8080") == 403


def test_origin_and_fetch_metadata() -> None:
    """Same origin and allowed origins pass; a foreign or "null" Origin, or a cross-site fetch without
    one (an <img>), is 403; a top-level navigation to the listener passes."""
    policy = _policy(load_settings(api_allowed_origins="https://grafana.example:3000"))
    local = {"Host": "127.0.0.1:6066"}
    assert _status(policy, **local, Origin="http://127.0.0.1:6066") is None
    assert _status(policy, **local, Origin="https://grafana.example:3000") is None
    assert _status(policy, **local, Origin="http://127.0.0.1:9999") == 403
    assert _status(policy, **local, Origin="null") == 403
    assert _status(policy, **local, **{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}) == 403
    assert _status(policy, **local, **{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}) is None
    assert _status(policy, **local, **{"Sec-Fetch-Site": "same-origin"}) is None


def test_posts_must_be_json() -> None:
    """POST with text/plain, a form encoding or no content type is 415; application/json passes."""
    policy = _policy(load_settings())
    local = {"Host": "localhost:6066"}
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert _status(policy, "POST", **local, **{"Content-Type": kind}) == 415
    assert _status(policy, "POST", **local) == 415
    assert _status(policy, "POST", **local, **{"Content-Type": "application/json; charset=utf-8"}) is None


def test_allowed_hosts_and_origins_are_checked_when_settings_are_built() -> None:
    """A URL in STREAMER_API_ALLOWED_HOSTS or a path in STREAMER_API_ALLOWED_ORIGINS is a one-line error."""
    with pytest.raises(ConfigError, match="STREAMER_API_ALLOWED_HOSTS"):
        load_settings(api_allowed_hosts="https://streamer.internal/")
    with pytest.raises(ConfigError, match="STREAMER_API_ALLOWED_ORIGINS"):
        load_settings(api_allowed_origins="https://grafana.example/path")
    settings = load_settings(api_allowed_hosts=" A.example, [::2] ", api_allowed_origins="HTTPS://g.example/")
    assert settings.api_allowed_hosts == ["a.example", "[::2]"]
    assert settings.api_allowed_origins == ["https://g.example"]
