"""Shared fixtures: the real local Kafka broker, and settings isolated per test (own topics, own data dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.settings import Settings
from tests.isolation import isolated_settings

ROOT = Path(__file__).resolve().parent.parent
KAFKA_PORT = int(os.environ.get("STREAMER_TEST_KAFKA_PORT", "9092"))


def _accepting(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The local broker's address, started by tools/kafka/kafka if it is not running yet."""
    if not _accepting(KAFKA_PORT):
        env = {**os.environ, "KAFKA_PORT": str(KAFKA_PORT)}
        subprocess.run([str(ROOT / "tools/kafka/kafka"), "start"], check=True, env=env)
    return f"127.0.0.1:{KAFKA_PORT}"


@pytest.fixture
def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def base_settings(tmp_path: Path, unique_prefix: str) -> Settings:
    """Settings with a private data dir and private topic names, no broker needed."""
    return isolated_settings(unique_prefix, tmp_path / "data", samples_partitions=4, sync_partitions=2)


@pytest.fixture
def kafka_settings(base_settings: Settings, kafka_bootstrap: str) -> Iterator[Settings]:
    """``base_settings`` pointed at the real local broker."""
    yield base_settings.model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap})
