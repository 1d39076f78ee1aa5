"""Which offsets may be committed: only those the pipeline released, in this consumer generation.

faust acks events on its own in one place. Its stream loop skips an event fetched while flow
control is suspended (a rebalance has begun) or of an older consumer generation, and acks it
unprocessed (``value is skipped_value`` in faust/streams.py, inlined in its Cython iterator, so
``Consumer.ack`` cannot be intercepted). That offset joins the list the pipeline's acks fill, and
faust's next commit can pass it; after the rebalance the partition resumes beyond a record nobody
processed. Two faust edges widen the window: it forgets a revoked partition's committed offset,
and its gap check (``min(acked) - committed > 1``) lets a gap of exactly one offset through.

``AckGate`` closes it where offsets are chosen: every offset faust proposes to commit is capped at
one past the last offset the pipeline released on that partition in the current generation (the
pipeline releases each partition's deliveries in order, every one of them: loaded, dropped or
dead-lettered). A skipped offset is then never committed ahead of processing; its partition is
re-read from the committed offset by whoever owns it next, and inserts are idempotent.

The processor's topics no longer pass through a faust stream (their messages reach the pipelines
through inlets, see ``faust_seam``), so no skip-ack is expected any more; the cap, and the release of
current-generation deliveries only, stay as the guarantee that none can become a commit. The consumer
asks ``cap`` for every offset it would commit (``faust_seam.SeamConsumer._new_offset``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streamer.processor.port import Ack, Delivery

log = logging.getLogger(__name__)


class AckGate:
    """Caps the consumer's commits at what the pipeline released; releases current-generation ones only."""

    def __init__(self, generation: Callable[[], int | None]) -> None:
        self._generation = generation
        self._released: dict[tuple[str, int], tuple[int | None, int]] = {}  # tp -> (generation, offset)
        self.capped = 0  # commits the consumer proposed beyond what was released

    def cap(self, tp: tuple[str, int], proposed: int | None) -> int | None:
        """``proposed`` (the next offset to read, as Kafka commits it), capped at what was released."""
        if proposed is None:
            return None
        generation, last = self._released.get(tp, (None, None))
        fresh = generation == self._generation() and last is not None  # released since the rebalance
        allowed = min(proposed, last + 1) if fresh and last is not None else None
        if allowed != proposed:
            self.capped += 1
            log.debug("commit of %s capped at %s (the consumer proposed %s)", tp, allowed, proposed)
        return allowed

    def releaser(self, ack: Callable[[Delivery], Awaitable[Any]]) -> Ack:
        """``ack`` for the pipeline: current-generation deliveries only, recorded as released.

        A delivery of a previous generation (its batch was mid-insert during a rebalance) is not
        acked: its partition is re-read from the committed offset by whoever owns it now.
        """

        async def release(delivery: Delivery) -> bool:
            generation = self._generation()
            if delivery.generation != generation:
                return False
            self._released[(delivery.topic, delivery.partition)] = (generation, delivery.offset)
            return bool(await ack(delivery))

        return release
