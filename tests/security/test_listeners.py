"""The processor's web server and the producer's /metrics: the same guard as the query API (token,
Host), faust's own views gone, the test fault hooks behind the token and absent unless switched on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streamer.errors import ConfigError
from streamer.processor.app import create_app
from streamer.settings import Settings
from tests.integration.processor.helpers import (
    child_env,
    free_port,
    prepare,
    processor_settings,
    start_processor,
    stop,
)

TOKEN = "listener-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                await client.get(url, timeout=2)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered: {log.read_text()[-2000:]}")


@pytest.mark.kafka
async def test_processor_web_server_is_guarded(kafka_settings: Settings, tmp_path: Path) -> None:
    """A running `streamer processor` with a token and the fault hooks on: faust's index, the fault
    hooks and /metrics want the token, faust's /router and /table views are gone, /health tells an
    anonymous caller only its status, and a foreign Host is refused unless the caller has the token
    (a rebinding page cannot send it; Prometheus scraping a container by IP does)."""
    settings = processor_settings(
        kafka_settings, api_token=SecretStr(TOKEN), processor_fault_hooks=True, log_level="warning"
    )
    await prepare(settings)
    log = tmp_path / "processor.log"
    proc = start_processor(settings, log)
    base = f"http://127.0.0.1:{settings.processor_web_port}"
    try:
        await _wait_up(base + "/health", proc, log)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            anonymous = {
                path: (await http.get(path)).status_code for path in ("/", "/metrics", "/api/v1/sites")
            }
            fault_anonymous = (await http.post("/_faults/clear", json={})).status_code
            health = (await http.get("/health")).json()
            detailed = (await http.get("/health", headers=AUTH)).json()
            faust_views = [
                (await http.get(path, headers=AUTH)).status_code
                for path in ("/router/", "/table/", "/graph/", "/stats/", "/performance/")
            ]
            fault_text = await http.post("/_faults/clear", content=b"", headers=AUTH)
            fault_json = await http.post("/_faults/clear", json={}, headers=AUTH)
            rebound = await http.get("/metrics", headers={"Host": "attacker.example"})
            by_ip = await http.get("/metrics", headers=AUTH | {"Host": "172.18.0.5:6066"})
            metrics = await http.get("/metrics", headers=AUTH)
    finally:
        stop(proc)
    assert anonymous == {"/": 401, "/metrics": 401, "/api/v1/sites": 401}
    assert fault_anonymous == 401
    assert list(health) == ["status"] and health["status"] in ("ok", "degraded")
    assert "clickhouse" in detailed and "kafka" in detailed
    assert faust_views == [404] * 5
    assert fault_text.status_code == 415
    assert fault_json.status_code == 200 and fault_json.json() == {"cleared": True}
    assert rebound.status_code == 403
    assert by_ip.status_code == 200
    assert metrics.status_code == 200 and "streamer_" in metrics.text


async def test_fault_hooks_are_absent_unless_switched_on(base_settings: Settings) -> None:
    """Without processor_fault_hooks the processor's web app has no /_faults route at all (404 to a
    well-formed POST); with it, the three routes exist."""
    routes: dict[bool, set[str]] = {}
    for enabled in (False, True):
        settings = base_settings.model_copy(update={"processor_fault_hooks": enabled})
        web = create_app(settings, sink_factory=lambda: None).app.web
        web.init_server()  # faust's blueprints and our web hook, as the worker does before listening
        routes[enabled] = {r.canonical for r in web.web_app.router.resources() if "_faults" in r.canonical}
        if not enabled:
            async with TestClient(TestServer(web.web_app)) as client:
                for action in ("detach", "reject", "clear"):
                    assert (await client.post(f"/_faults/{action}", json={})).status == 404
    assert routes == {False: set(), True: {"/_faults/detach", "/_faults/reject", "/_faults/clear"}}


@pytest.mark.kafka
def test_producer_metrics_want_the_token(kafka_settings: Settings, tmp_path: Path) -> None:
    """A running `streamer producer` with a token: /metrics is 401 without it and 200 with it, a
    foreign Host is 403 without the token, and /health (for liveness probes) answers anyone."""
    port = free_port()
    settings = kafka_settings.model_copy(
        update={
            "api_token": SecretStr(TOKEN),
            "producer_metrics_port": port,
            "ace_base_url": "http://127.0.0.1:1/api",  # nothing to fetch: only the listener matters
            "ace_token": SecretStr("ace"),
            "sites": ["site_x"],
            "log_level": "error",
        }
    )
    log = tmp_path / "producer.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamer.cli", "producer"],
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                anonymous = httpx.get(url + "/metrics", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        authorised = httpx.get(url + "/metrics", headers=AUTH, timeout=5)
        rebound = httpx.get(url + "/metrics", headers={"Host": "attacker.example"}, timeout=5)
        health = httpx.get(url + "/health", timeout=5)
    finally:
        stop(proc)
    assert anonymous.status_code == 401 and "streamer_" not in anonymous.text
    assert authorised.status_code == 200 and "streamer_samples_fetched_total" in authorised.text
    assert rebound.status_code == 403
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_non_loopback_binds_need_the_token(base_settings: Settings) -> None:
    """processor_web_host and producer_metrics_host beyond loopback without api_token refuse to start,
    naming the setting; with a token they are accepted."""
    from streamer.producer.metrics_http import serve_metrics  # new with the fix

    web_open = base_settings.model_copy(update={"processor_web_host": "0.0.0.0"})
    with pytest.raises(ConfigError, match=r"STREAMER_PROCESSOR_WEB_HOST=0\.0\.0\.0 .*STREAMER_API_TOKEN"):
        create_app(web_open, sink_factory=lambda: None)
    metrics_open = base_settings.model_copy(update={"producer_metrics_host": "10.1.2.3"})
    with pytest.raises(ConfigError, match=r"STREAMER_PRODUCER_METRICS_HOST=10\.1\.2\.3 .*STREAMER_API_TOKEN"):
        serve_metrics(metrics_open)
    create_app(web_open.model_copy(update={"api_token": SecretStr(TOKEN)}), sink_factory=lambda: None)
