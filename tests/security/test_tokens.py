"""Tokens: an empty STREAMER_API_TOKEN is refused, one rule decides "auth on" everywhere, and /health
tells an anonymous caller only ok/degraded/down."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streamer.errors import ConfigError
from streamer.query.api import build_app, check_access
from streamer.query.service import QueryService
from streamer.settings import Settings, load_settings
from tests.integration.processor.helpers import free_port

DETAILS = {
    "status": "degraded",
    "clickhouse": {
        "reachable": True,
        "target": "chdb:///srv/secret/path",
        "schema_version": 6,
        "error": None,
    },
    "kafka": {"reachable": False, "error": "KafkaConnectionError: kafka-internal.corp:9092 refused"},
    "consumer_lag": None,
    "dlq_depth": None,
}


class HealthStub(QueryService):
    async def health(self) -> dict[str, Any]:
        return DETAILS


def test_empty_api_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_API_TOKEN="" (or blanks) stops start-up with one line naming the variable."""
    for value in ("", "   "):
        monkeypatch.setenv("STREAMER_API_TOKEN", value)
        with pytest.raises(ConfigError, match="STREAMER_API_TOKEN: must not be empty") as info:
            load_settings()
        assert "\n" not in str(info.value)


def test_streamer_api_with_an_empty_token_does_not_listen_beyond_loopback() -> None:
    """`streamer api --host 0.0.0.0` with STREAMER_API_TOKEN="" exits 2 with one line; it never serves
    every route unauthenticated on all interfaces."""
    env = {"PATH": "/usr/bin:/bin", "STREAMER_API_TOKEN": "", "STREAMER_API_PORT": str(free_port())}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "streamer.cli", "api", "--host", "0.0.0.0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("streamer api started with an empty token") from None
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "STREAMER_API_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_one_rule_for_binding_and_for_requests(base_settings: Settings) -> None:
    """An empty token that skipped validation (model_copy) counts as no token for the bind check too:
    a 0.0.0.0 bind is refused, not served open."""
    empty = base_settings.model_copy(update={"api_token": SecretStr("")})
    with pytest.raises(ConfigError, match="STREAMER_API_TOKEN"):
        check_access(empty, "0.0.0.0")
    assert not empty.api_auth_required  # the predicate the request guard reads
    check_access(empty.model_copy(update={"api_token": SecretStr("x")}), "0.0.0.0")


@pytest.mark.parametrize("token", [None, "h3alth-t0ken"])
async def test_health_shows_details_only_with_the_token(base_settings: Settings, token: str | None) -> None:
    """Anonymous (or wrong-token) callers of /health get only the status and its code; a caller with the
    token gets the ClickHouse target, the Kafka address and the errors."""
    settings = base_settings.model_copy(update={"api_token": SecretStr(token) if token else None})
    async with TestClient(TestServer(build_app(settings, HealthStub(settings)))) as client:
        anonymous = await client.get("/health")
        wrong = await client.get("/health", headers={"Authorization": "Bearer wrong"})
        assert anonymous.status == 200 and await anonymous.json() == {"status": "degraded"}
        assert await wrong.json() == {"status": "degraded"}
        if token:
            full = await client.get("/health", headers={"Authorization": f"Bearer {token}"})
            assert await full.json() == DETAILS
