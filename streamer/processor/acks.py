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
pipeline releases each partition's events in order, every one of them: loaded, dropped or
dead-lettered). A skipped offset is then never committed ahead of processing; its partition is
re-read from the committed offset by whoever owns it next, and inserts are idempotent.

``ace.samples`` messages no longer pass through a faust stream (they reach the pipeline through an
inlet, see ``hotpath``), so faust's skip-acks now concern ``ace.sync_runs`` only; the cap, and the
release of current-generation messages only, apply to both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class AckGate:
    """Caps faust's commits at what the pipeline released; releases current-generation events only."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._released: dict[Any, tuple[int, int]] = {}  # tp -> (generation, last released offset)
        self.capped = 0  # commits faust proposed beyond what was released

    def install(self, consumer: Any) -> None:
        """Wrap the consumer's commit-offset choice (once per consumer)."""
        if getattr(consumer, "_streamer_ack_gate", None) is self:
            return
        propose = consumer._new_offset

        def new_offset(tp: Any) -> int | None:
            return self.cap(tp, propose(tp))

        consumer._new_offset = new_offset
        consumer._streamer_ack_gate = self

    def cap(self, tp: Any, proposed: int | None) -> int | None:
        """``proposed`` (the next offset to read, as Kafka commits it), capped at what was released."""
        if proposed is None:
            return None
        generation, last = self._released.get(tp, (None, None))
        if generation != self._app.consumer_generation_id or last is None:
            allowed = None  # nothing released on it since the last rebalance
        else:
            allowed = min(proposed, last + 1)
        if allowed != proposed:
            self.capped += 1
            log.debug("commit of %s capped at %s (faust proposed %s)", tp, allowed, proposed)
        return allowed

    def releaser(
        self, ack: Callable[[Any], Awaitable[Any]], message_of: Callable[[Any], Any] = lambda e: e.message
    ) -> Callable[[Any], Awaitable[Any]]:
        """``ack`` for the pipeline: current-generation events only, recorded as released.

        ``ack`` takes what the pipeline holds (a stream's event, or the message itself);
        ``message_of`` finds its faust message. An event of a previous generation (its batch was
        mid-insert during a rebalance) is not acked: its partition is re-read from the committed
        offset by whoever owns it now.
        """
        self.install(self._app.consumer)

        async def release(event: Any) -> Any:
            message = message_of(event)
            generation = self._app.consumer_generation_id
            if message.generation_id != generation:
                return False
            self._released[message.tp] = (generation, message.offset)
            return await ack(event)

        return release
