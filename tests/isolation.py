"""Settings isolated per run: private topic names, consumer group and data dir on a shared broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.settings import Settings, load_settings


def isolated_settings(prefix: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings whose topics, app id and client id all start with ``prefix``."""
    return load_settings(
        data_dir=data_dir,
        topic_samples=f"{prefix}.samples",
        topic_points=f"{prefix}.points",
        topic_sync=f"{prefix}.sync",
        topic_sync_runs=f"{prefix}.sync_runs",
        topic_dlq=f"{prefix}.dlq",
        topic_dlq_state=f"{prefix}.dlq_state",
        processor_app_id=f"{prefix}-processor",
        kafka_client_id=f"{prefix}-client",
        **overrides,
    )
