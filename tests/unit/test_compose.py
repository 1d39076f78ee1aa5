"""docker-compose.yml: valid against the compose spec and Debian's docker-compose; every command exists."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from streamer.cli import cli
from streamer.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEMO_ENV = ROOT / "demo.env"
CHECK_JSONSCHEMA = ROOT / ".tools/compose-check/bin/check-jsonschema"
# What the stack needs from its user outside the demo (demo.env holds public stand-ins).
SECRETS = (
    "ACE_TOKEN",
    "API_TOKEN",
    "CLICKHOUSE_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "GRAFANA_CLICKHOUSE_PASSWORD",
)
REAL_USE = {name: f"secret-{name.lower()}" for name in SECRETS}
REAL_API = "https://flightdeck.aceiot.cloud/api"


def _services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """docker-compose with none of the stack's variables from this shell, only ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in {*SECRETS, "ACE_BASE_URL", "ACE_SITES"}}
    clean.pop("COMPOSE_PROFILES", None)
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **(env or {})},
    )


def _resolved(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as docker-compose resolves it (anchors merged, variables filled)."""
    done = _compose(*args, "config", env=env)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def _active(config: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services ``docker compose up`` starts with ``profiles`` enabled."""
    services: dict[str, Any] = config["services"]
    return {n: s for n, s in services.items() if not s.get("profiles") or profiles & set(s["profiles"])}


def test_compose_file_matches_compose_spec() -> None:
    """check-jsonschema's built-in compose-spec schema accepts the file."""
    assert CHECK_JSONSCHEMA.exists(), "run tools/compose-check/install first"
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_accepts_file() -> None:
    """Debian's docker-compose resolves the file (anchors, interpolation, profiles) without error: for
    the demo through demo.env, for real use with the secrets set, with and without Grafana."""
    assert _compose("--env-file", str(DEMO_ENV), "config", "-q").returncode == 0
    for profiles in ([], ["--profile", "grafana"]):
        result = _compose(*profiles, "config", "-q", env=REAL_USE)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", SECRETS)
def test_every_secret_is_required_outside_the_demo(missing: str) -> None:
    """Without one of the secrets docker-compose refuses the file and names the variable; there is no
    public default a real deployment could start with (demo.env supplies the demo's stand-ins)."""
    result = _compose("config", "-q", env={k: v for k, v in REAL_USE.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_real_api_by_default_and_the_simulator_only_in_the_demo() -> None:
    """Without the demo the producer polls the real ACE API and no simulator runs; demo.env enables the
    demo profile (simulator, Grafana) and points every streamer service at the simulator."""
    real = _active(_resolved(env=REAL_USE), set())
    assert "sim" not in real and "grafana" not in real
    assert real["producer"]["environment"]["STREAMER_ACE_BASE_URL"] == REAL_API
    assert real["producer"]["environment"]["STREAMER_ACE_TOKEN"] == REAL_USE["ACE_TOKEN"]
    demo_env = dict(line.split("=", 1) for line in DEMO_ENV.read_text().splitlines() if "=" in line)
    demo = _active(_resolved("--env-file", str(DEMO_ENV)), set(demo_env["COMPOSE_PROFILES"].split(",")))
    assert {"sim", "grafana", "prometheus"} <= set(demo)
    streamer_services = [s for s in demo.values() if s.get("image") == "streamer:latest"]
    assert {s["environment"]["STREAMER_ACE_BASE_URL"] for s in streamer_services} == {"http://sim:8765/api"}
    assert "sim" in _active(_resolved("--profile", "demo", env=REAL_USE), {"demo"})


def test_grafana_runs_under_its_profile_and_in_the_demo() -> None:
    """`--profile grafana` adds Grafana and Prometheus to the stack, which otherwise runs without them."""
    config = _resolved("--profile", "grafana", env=REAL_USE)
    assert {"grafana", "prometheus"} <= set(_active(config, {"grafana"}))
    for name in ("grafana", "prometheus"):
        assert set(config["services"][name]["profiles"]) == {"grafana", "demo"}


# Where each stateful service keeps what a recreated container must find again.
_DATA_PATHS = {
    "kafka": lambda s: s["environment"]["KAFKA_LOG_DIRS"],
    "clickhouse": lambda s: "/var/lib/clickhouse",
    "processor": lambda s: s["environment"]["STREAMER_DATA_DIR"],
    "grafana": lambda s: s["environment"]["GF_PATHS_DATA"],
    "prometheus": lambda s: next(
        a.split("=", 1)[1] for a in s["command"] if a.startswith("--storage.tsdb.path=")
    ),
}


def test_every_stateful_data_path_is_on_a_named_volume() -> None:
    """Kafka's log dirs (topics, offsets, watermarks), ClickHouse's data, the processor's data dir, and
    Grafana's and Prometheus's storage are each the mount point of a named volume, so `down`/`up` and a
    new image keep them; the broker writes where its volume is mounted (KAFKA_LOG_DIRS)."""
    config = _resolved("--profile", "grafana", env=REAL_USE)
    named = set(config["volumes"])
    for name, data_path in _DATA_PATHS.items():
        service = config["services"][name]
        mounts = {}
        for volume in service.get("volumes", []):
            source, target = (
                (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
            )
            mounts[target] = source
        path = data_path(service)
        assert mounts.get(path) in named, f"{name}: {path} is not on a named volume ({mounts})"


def test_streamer_image_is_built_here_never_pulled() -> None:
    """Every service running the streamer image builds it from this checkout (`pull_policy: build`):
    compose never fetches some other `streamer:latest` from a registry."""
    for name, service in _resolved(env=REAL_USE)["services"].items():
        if service.get("image") == "streamer:latest":
            assert service.get("build") and service.get("pull_policy") == "build", name


@pytest.mark.parametrize(
    ("service", "field", "port"),
    [("processor", "processor_web_host", 6066), ("producer", "producer_metrics_host", 9464)],
)
def test_metrics_listen_beyond_the_container_with_the_token(
    service: str, field: str, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor's web server and the producer's /metrics bind 0.0.0.0 inside their containers
    (Prometheus scrapes them from its own), with the API token the settings demand for such a bind:
    the service's compose environment builds valid settings."""
    env = _resolved(env=REAL_USE)["services"][service]["environment"]
    for key in list(os.environ):
        if key.startswith("STREAMER_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("STREAMER_"):
            monkeypatch.setenv(key, str(value))
    settings = load_settings()
    assert getattr(settings, field) == "0.0.0.0"
    assert settings.api_token is not None and settings.api_token.get_secret_value() == REAL_USE["API_TOKEN"]
    scrape = yaml.safe_load((ROOT / "grafana/prometheus.yml").read_text())["scrape_configs"]
    targets = {c["job_name"]: c for c in scrape}[service]
    addresses = [t for c in targets.get("static_configs", []) for t in c["targets"]]
    addresses += [f"{n}:{c['port']}" for c in targets.get("dns_sd_configs", []) for n in c["names"]]
    assert addresses == [f"{service}:{port}"]


def test_every_service_has_healthcheck_or_is_one_shot() -> None:
    """Long-running services have a health check and a restart policy; one-shot jobs do not restart."""
    for name, service in _services().items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def _resolve(args: list[str]) -> click.Command:
    command: click.Command = cli
    name = "streamer"
    while isinstance(command, click.Group):
        ctx = command.make_context(name, list(args))
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        assert rest, f"{name} needs a subcommand"
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`{name} {rest[0]}` is not a streamer command"
        name, args, command = rest[0], rest[1:], sub
    command.make_context(name, list(args))  # raises UsageError on unknown options
    return command


@pytest.mark.parametrize("service", sorted(_services()))
def test_compose_commands_exist_in_cli(service: str) -> None:
    """Each service's `streamer …` command parses with the real CLI (the image can run it)."""
    spec = _services()[service]
    command = spec.get("command")
    if not command or command[0] != "streamer":
        assert "image" in spec and "build" not in spec, f"{service} runs no streamer command"
        return
    _resolve(command[1:])
