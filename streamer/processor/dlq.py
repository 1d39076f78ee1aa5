"""Dead letters: records the processor cannot load, kept on ``ace.dlq`` with why and where from.

A dead letter carries the original key and value untouched and these headers (utf-8 strings, see
docs/CONTRACTS.md): ``error_class``, ``error_message``, ``stage`` (decode|normalise|insert),
``attempts``, ``first_failed_at``, ``last_failed_at`` (ISO 8601), ``source_topic``,
``source_partition``, ``source_offset``, ``batch_token``, ``app_version``. A record replayed from the
DLQ carries ``replayed_from``, ``attempts`` and ``first_failed_at``; failing again, it counts on.

Writes go through an idempotent producer (acks=all) and are AWAITED before the source records are
acked: a dead letter that is not durable must not let its offset be committed. If the DLQ cannot be
written the worker raises ``DlqWriteError`` and crashes rather than commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer import __version__
from streamer.errors import DlqWriteError
from streamer.kafka import reliable_producer, start_client
from streamer.metrics import DLQ_RECORDS
from streamer.settings import Settings

log = logging.getLogger(__name__)

STAGE_DECODE = "decode"
STAGE_NORMALISE = "normalise"
STAGE_INSERT = "insert"
MAX_MESSAGE_CHARS = 500
H_REPLAYED_FROM = "replayed_from"
H_ATTEMPTS = "attempts"
H_FIRST_FAILED_AT = "first_failed_at"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One failed source record and why it failed."""

    key: bytes | None
    value: bytes | None
    error_class: str
    error_message: str
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    batch_token: str
    source_headers: Mapping[str, bytes]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dlq_headers(letter: DeadLetter, failed_at: str) -> list[tuple[str, bytes]]:
    """The headers of a dead letter; ``attempts`` and ``first_failed_at`` carry over from a replay."""
    previous = letter.source_headers
    try:
        attempts = int(previous.get(H_ATTEMPTS, b"0").decode()) + 1
    except ValueError:
        attempts = 1
    first = previous.get(H_FIRST_FAILED_AT, b"").decode("utf-8", "replace") or failed_at
    message = " ".join(letter.error_message.split())
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    headers = {
        "error_class": letter.error_class,
        "error_message": message,
        "stage": letter.stage,
        H_ATTEMPTS: str(attempts),
        H_FIRST_FAILED_AT: first,
        "last_failed_at": failed_at,
        "source_topic": letter.source_topic,
        "source_partition": str(letter.source_partition),
        "source_offset": str(letter.source_offset),
        "batch_token": letter.batch_token,
        "app_version": __version__,
    }
    replayed_from = previous.get(H_REPLAYED_FROM)
    if replayed_from is not None:
        headers[H_REPLAYED_FROM] = replayed_from.decode("utf-8", "replace")
    return [(name, value.encode()) for name, value in headers.items()]


class DlqWriter:
    """Sends dead letters durably; ``send`` returns only once every letter is acknowledged."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer | None = None) -> None:
        self._settings = settings
        self._producer = producer or reliable_producer(settings, client_id=f"{settings.kafka_client_id}-dlq")
        self.topic = settings.topic_dlq

    async def start(self) -> None:
        await start_client(self._producer, self._settings)

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Publish ``letters`` and await every delivery; ``DlqWriteError`` if any is not durable."""
        if not letters:
            return
        failed_at = now_iso()
        try:
            futures = [
                await self._producer.send(
                    self.topic, letter.value, key=letter.key, headers=dlq_headers(letter, failed_at)
                )
                for letter in letters
            ]
            await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise DlqWriteError(f"cannot write {len(letters)} record(s) to {self.topic}: {exc!r}") from exc
        for letter in letters:
            DLQ_RECORDS.labels(error_class=letter.error_class).inc()
            log.warning(
                "dead-lettered %s:%d:%d (%s at %s): %s",
                letter.source_topic,
                letter.source_partition,
                letter.source_offset,
                letter.error_class,
                letter.stage,
                letter.error_message[:200],
            )
