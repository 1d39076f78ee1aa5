"""Acks after a rebalance: events of a previous consumer generation are never acked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streamer.processor.app import current_generation_ack


async def test_only_current_generation_events_are_acked() -> None:
    """An event fetched before the rebalance (older generation) is skipped; current ones are acked."""
    app = SimpleNamespace(consumer_generation_id=7)
    acked: list[Any] = []

    async def ack(event: Any) -> bool:
        acked.append(event)
        return True

    guarded = current_generation_ack(app, ack)
    old = SimpleNamespace(message=SimpleNamespace(generation_id=6))
    new = SimpleNamespace(message=SimpleNamespace(generation_id=7))
    assert await guarded(old) is False
    assert await guarded(new) is True
    assert acked == [new]
