"""What the processor sees of its Kafka consumer: deliveries, inlets, and one ack.

The consumer (faust's, reached only through ``faust_seam``) hands every message of a processor topic
to that topic's ``Inlet`` as a ``Delivery``; the pipeline acks each delivery once its batch is
inserted or dead-lettered, in order, through an ``Ack``. Nothing else of the consumer is visible.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Delivery:
    """One consumed message: where it is in its topic, in which consumer generation, and its bytes
    (until the pipeline takes them: ``batch_items.item_of``; the delivery itself lives on until acked)."""

    topic: str
    partition: int
    offset: int
    generation: int | None  # the consumer generation it was fetched in (a rebalance starts a new one)
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes]
    token: object  # the consumer's own handle of the message: only ``faust_seam`` looks inside


class Inlet(Protocol):
    """Where the consumer's fetch loop hands a topic's deliveries (``batch_buffer.BufferInlet``)."""

    def offer(self, delivery: Delivery) -> bool:
        """Take ``delivery`` now (True), or refuse it (False): the fetch then awaits ``wait_room``."""
        ...

    async def wait_room(self) -> None:
        """Return once an offer may succeed."""
        ...


Ack = Callable[[Delivery], Awaitable[bool]]
"""Acknowledge a delivery: False (nothing done) when it belongs to an older consumer generation."""
