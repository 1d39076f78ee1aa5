"""The installed wheel runs the compose stack's commands, outside the checkout, and lands one hour exactly.

The commands and environments are read from docker-compose.yml as ``docker-compose config`` resolves them
(demo profile), then translated to this machine: Kafka → the local broker with topic names, app id and
producer group private to the test; the ClickHouse server → the embedded engine at a chdb:// path under the
test's temporary directory; the simulator → 127.0.0.1 on a free port; 0.0.0.0 binds → 127.0.0.1; service
ports → free ports. The producer gets ``--once --now T`` so the hour it syncs is known. Every command is the
installed ``streamer`` script, run from an empty working directory.

The embedded engine admits one process per data directory, so the stack's ``api`` service (a stand-alone
``streamer api`` beside the processor, both on the ClickHouse server) cannot run beside the processor here:
while the processor runs, its web port serves the query API in embedded mode (checked through /health, as
the compose health check does); once it has stored everything and stopped, the installed ``streamer api``
is started on the same data directory and serves the page, its static assets and the API.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from streamer.package_data import STATIC, VENDOR, resource_files
from streamer.settings import Settings
from streamer.times import to_ms
from tests.dockerfile import ROOT
from tests.integration.package.conftest import Installed, clean_env
from tests.integration.processor import helpers as h
from tests.isolation import isolated_settings

pytestmark = pytest.mark.kafka

COMPOSE = ROOT / "docker-compose.yml"
NOW = "2024-03-01T12:00:00Z"
HOUR_MS = 3_600_000
SERVICES = ("topics", "migrate", "sim", "producer", "processor", "api")
EXACT_SQL = """
SELECT count(), uniqExact(site, point, ts), sum(toInt64(round(value * 1000))),
       sum(crc32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts)))))
FROM {db}.timeseries_raw FINAL WHERE point NOT LIKE 'weather.%'
"""


def compose_services(secrets_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The services of docker-compose.yml, interpolated and merged by docker-compose itself.

    Variables the file requires (``${NAME:?message}``) and ``secrets_env`` lacks get a random value.
    """
    required = re.findall(r"\$\{(\w+):?\?", COMPOSE.read_text())
    secrets_env = {**{name: secrets.token_hex(8) for name in required}, **secrets_env}
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", "demo", "config"],
        capture_output=True, text=True, cwd=ROOT, env=clean_env(**secrets_env), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    services: dict[str, dict[str, Any]] = yaml.safe_load(done.stdout)["services"]
    assert set(SERVICES) <= set(services)
    return services


class Stack:
    """The compose services' commands and environments, translated to this machine."""

    def __init__(self, services: dict[str, dict[str, Any]], settings: Settings, workdir: Path) -> None:
        self.services, self.settings, self.workdir = services, settings, workdir
        self.ports = {"sim": h.free_port(), "processor": h.free_port(), "api": h.free_port()}
        self.sim_root = f"http://127.0.0.1:{self.ports['sim']}"

    def command(self, service: str, installed: Installed) -> list[str]:
        words = [str(w) for w in self.services[service]["command"]]
        assert words[0] == "streamer", words
        for option, value in (("--host", "127.0.0.1"), ("--port", str(self.ports.get(service, 0)))):
            if option in words:
                words[words.index(option) + 1] = value
        return [str(installed.streamer), *words[1:]]

    def env(self, service: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in (self.services[service].get("environment") or {}).items():
            out[key] = self._local(key, str(value))
        isolation = self.settings.to_env()
        for key in ("TOPIC_SAMPLES", "TOPIC_POINTS", "TOPIC_SYNC", "TOPIC_SYNC_RUNS", "TOPIC_DLQ"):
            out[f"STREAMER_{key}"] = isolation[f"STREAMER_{key}"]
        for key in ("PROCESSOR_APP_ID", "KAFKA_CLIENT_ID"):
            out[f"STREAMER_{key}"] = isolation[f"STREAMER_{key}"]
        out["STREAMER_DATA_DIR"] = str(self.workdir / f"{service}-data")  # the image's /data
        out["STREAMER_PROCESSOR_WEB_PORT"] = str(self.ports["processor"])
        out["STREAMER_API_PORT"] = str(self.ports["api"])
        if "STREAMER_PRODUCER_METRICS_PORT" in out:
            out["STREAMER_PRODUCER_METRICS_PORT"] = str(h.free_port())
        if group := out.get("STREAMER_PRODUCER_GROUP"):
            out["STREAMER_PRODUCER_GROUP"] = f"{self.settings.kafka_client_id}-{group}"
        return clean_env(**out)

    def _local(self, key: str, value: str) -> str:
        if key == "STREAMER_KAFKA_BOOTSTRAP_SERVERS":
            assert value.startswith("kafka:"), value
            return self.settings.kafka_bootstrap_servers
        if key == "STREAMER_CLICKHOUSE_URL":
            assert urlparse(value).hostname == "clickhouse", value
            return self.settings.resolved_clickhouse_url
        if key == "STREAMER_ACE_BASE_URL":
            parsed = urlparse(value)
            assert parsed.hostname == "sim", value
            return self.sim_root + parsed.path
        return "127.0.0.1" if value == "0.0.0.0" else value

    def run(self, service: str, installed: Installed, *extra: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*self.command(service, installed), *extra],
            env=self.env(service), cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"{service}: {done.stdout}{done.stderr}"
        return done.stdout

    def start(self, service: str, installed: Installed) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{service}.log").open("ab") as log:
            return subprocess.Popen(
                self.command(service, installed),
                env=self.env(service), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self, service: str) -> str:
        return (self.workdir / f"{service}.log").read_text()[-3000:]


def wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Callable[[], str], token: str | None = None
) -> httpx.Response:
    """The first 200 answer of ``url`` while ``proc`` runs (60 s at most)."""
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        assert proc.poll() is None, log()
        try:
            answer = httpx.get(url, timeout=5, headers=headers)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not answering 200: {log()}"
        time.sleep(0.3)


def expected_hour(stack: Stack, installed: Installed) -> tuple[int, int, int, int]:
    """What the stack must hold: the installed `streamer sim expected` with the sim service's options."""
    sim_args = stack.command("sim", installed)[3:]
    for option in ("--host", "--port"):
        i = sim_args.index(option)
        del sim_args[i : i + 2]
    end = to_ms(NOW)
    totals = [0, 0, 0]
    for site in ("site_01", "site_02"):
        out = subprocess.run(
            [str(installed.streamer), "sim", "expected", *sim_args, "--site", site,
             "--start", str(end - HOUR_MS), "--end", str(end)],
            capture_output=True, text=True, check=True, cwd=stack.workdir, env=clean_env(), timeout=60,
        ).stdout  # fmt: skip
        valid = json.loads(out)["valid"]
        for i, name in enumerate(("count", "value_milli_sum", "key_checksum")):
            totals[i] += valid[name]
    return totals[0], totals[0], totals[1], totals[2]


@pytest.mark.slow
def test_installed_wheel_runs_the_compose_commands_and_lands_an_hour_exactly(
    installed: Installed, kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    """From an empty directory the installed commands of docker-compose.yml (topics, migrate, sim, producer,
    processor, api) land one hour of two sites exactly (count FINAL, distinct keys, value sum, key checksum
    = `streamer sim expected`), and the installed `streamer api` serves the page, its assets and the API."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    tokens = {"ACE_TOKEN": secrets.token_hex(8), "API_TOKEN": secrets.token_hex(8)}
    settings = isolated_settings(
        unique_prefix, workdir / "data", kafka_bootstrap_servers=kafka_bootstrap,
        clickhouse_url=f"chdb://{workdir / 'clickhouse'}",
    )  # fmt: skip
    # The demo's simulator URL (docker compose --profile demo), as a user would set it for the stack.
    demo = {"ACE_BASE_URL": "http://sim:8765/api", "CLICKHOUSE_PASSWORD": secrets.token_hex(8)}
    services = compose_services({**tokens, **demo})
    stack = Stack(services, settings, workdir)
    want = expected_hour(stack, installed)
    assert want[0] > 500_000  # two 4,583-point sites, one hour

    assert stack.run("topics", installed).startswith("created: ")
    migrated = stack.run("migrate", installed).splitlines()
    ddl = installed.site_packages / "streamer" / "sink" / "ddl"
    shipped = sorted(f.name.removesuffix(".sql") for f in ddl.glob("*.sql"))
    assert migrated == [f"applied {name}" for name in shipped] and len(shipped) >= 6

    sim = stack.start("sim", installed)
    processor = stack.start("processor", installed)
    try:
        wait_http(f"{stack.sim_root}/_sim/health", sim, lambda: stack.log("sim"))
        web = f"http://127.0.0.1:{stack.ports['processor']}"
        # /health shows its details only to a caller with the token (the compose stack sets one)
        health = wait_http(f"{web}/health", processor, lambda: stack.log("processor"), tokens["API_TOKEN"])
        assert health.json()["clickhouse"]["schema_version"] == len(shipped)
        check_page(web)  # the processor's web server serves the page too (embedded mode)
        stack.run("producer", installed, "--once", "--now", NOW, timeout=180)
        asyncio.run(h.wait_consumed(settings, [processor], timeout=120))
    finally:
        assert h.stop(processor) == 0, stack.log("processor")
        h.stop(sim)

    api = stack.start("api", installed)
    try:
        base = f"http://127.0.0.1:{stack.ports['api']}"
        wait_http(f"{base}/health", api, lambda: stack.log("api"))
        check_api(base, tokens["API_TOKEN"], want[0])
    finally:
        # `streamer api` has no SIGTERM handler: it dies of the signal (nothing to flush, read-only).
        assert h.stop(api) in (0, -signal.SIGTERM), stack.log("api")
    got = h.clickhouse(settings, EXACT_SQL.format(db=settings.clickhouse_database))[0]
    assert tuple(int(v) for v in got) == want
    assert asyncio.run(h.read_all(settings, settings.topic_dlq)) == []


def check_page(base: str, at: str = "/ui/") -> None:
    """The status page and every static asset it links, byte for byte the package's files."""
    page = httpx.get(f"{base}{at}", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in resource_files(STATIC):
        if asset.name == "index.html":
            assert page.content == asset.read_bytes()
            continue
        assert f"/static/{asset.name}" in page.text
        answer = httpx.get(f"{base}/static/{asset.name}", timeout=10)
        assert answer.status_code == 200 and answer.content == asset.read_bytes(), asset.name
    for asset in resource_files(VENDOR):  # uPlot and its licence
        answer = httpx.get(f"{base}/static/vendor/{asset.name}", timeout=10)
        assert answer.status_code == 200 and answer.content == asset.read_bytes(), asset.name


def check_api(base: str, token: str, count: int) -> None:
    """The page (at / and /ui/), its assets and the data routes, behind the compose token."""
    check_page(base, "/")
    check_page(base, "/ui/")
    assert httpx.get(f"{base}/api/v1/sites", timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    sites = httpx.get(f"{base}/api/v1/sites", headers=auth, timeout=30)
    assert sites.status_code == 200, sites.text
    listed = sites.json()["sites"]
    assert sorted(s["site"] for s in listed) == ["site_01", "site_02"]
    assert all(s["points_with_data"] > 0 for s in listed), listed
    sql = "SELECT count() FROM timeseries_raw FINAL WHERE point NOT LIKE 'weather.%'"
    answer = httpx.post(f"{base}/api/v1/sql", json={"sql": sql}, headers=auth, timeout=60)
    assert answer.status_code == 200, answer.text
    assert [[int(v) for v in row] for row in answer.json()["rows"]] == [[count]]
