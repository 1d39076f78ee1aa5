"""docker-compose.yml: valid against the compose spec and Debian's docker-compose; every command exists."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from streamer.cli import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = ROOT / ".tools/compose-check/bin/check-jsonschema"


def _services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


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
    """Debian's docker-compose resolves the file (anchors, interpolation, profiles) without error."""
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", "demo", "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


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
