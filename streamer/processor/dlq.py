"""Dead letters: records the processor cannot load, kept on ``ace.dlq`` with why and where from.

A dead letter carries the original key and value untouched and the headers of
``streamer.models.DLQ_HEADERS`` (utf-8 strings). Its ``letter_id`` (the source position of its first
failure) names it across replays: a replayed record that fails again is not appended a second time; a
``failed`` state with the new attempt count goes to the compacted ``ace.dlq_state`` instead, so
replaying converges. Only when the letter's DLQ record is older than half the DLQ's retention is it
appended again (same ``letter_id``; readers keep the newest copy), so its content outlives the retention.

Writes go through an idempotent producer (acks=all) and are AWAITED before the source records are
acked: a dead letter that is not durable must not let its offset be committed. If the DLQ cannot be
written the worker raises ``DlqWriteError`` and crashes rather than commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import time_ns

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer import __version__
from streamer.errors import DlqWriteError
from streamer.kafka import reliable_producer, start_client
from streamer.metrics import DLQ_RECORDS
from streamer.models import DLQ_HEADERS, DlqLetterState
from streamer.settings import Settings
from streamer.times import ms_to_iso

log = logging.getLogger(__name__)

STAGE_DECODE = "decode"
STAGE_NORMALISE = "normalise"
STAGE_INSERT = "insert"
MAX_MESSAGE_CHARS = 500
# Every header name comes from the one list (a name missing there fails at import, not on the wire).
_HEADER = {name: name for name in DLQ_HEADERS}
H_ERROR_CLASS = _HEADER["error_class"]
H_ERROR_MESSAGE = _HEADER["error_message"]
H_STAGE = _HEADER["stage"]
H_ATTEMPTS = _HEADER["attempts"]
H_FIRST_FAILED_AT = _HEADER["first_failed_at"]
H_LAST_FAILED_AT = _HEADER["last_failed_at"]
H_SOURCE_TOPIC = _HEADER["source_topic"]
H_SOURCE_PARTITION = _HEADER["source_partition"]
H_SOURCE_OFFSET = _HEADER["source_offset"]
H_BATCH_TOKEN = _HEADER["batch_token"]
H_APP_VERSION = _HEADER["app_version"]
H_LETTER_ID = _HEADER["letter_id"]
H_REPLAYED_FROM = _HEADER["replayed_from"]
H_DLQ_WRITTEN_AT = _HEADER["dlq_written_at"]


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
    return ms_to_iso(time_ns() // 1_000_000)


def _header(letter: DeadLetter, name: str) -> str:
    return letter.source_headers.get(name, b"").decode("utf-8", "replace")


def letter_id(letter: DeadLetter) -> str:
    """The letter's name across replays: the source position of its first failure."""
    return _header(letter, H_LETTER_ID) or (
        f"{letter.source_topic}:{letter.source_partition}:{letter.source_offset}"
    )


def attempts(letter: DeadLetter) -> int:
    """Failures of this record so far, this one included."""
    try:
        return int(_header(letter, H_ATTEMPTS) or "0") + 1
    except ValueError:
        return 1


def short_message(letter: DeadLetter) -> str:
    message = " ".join(letter.error_message.split())
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 3] + "..."
    return message


def fails_again(letter: DeadLetter, now_ms: int, retention_ms: int) -> bool:
    """A replayed letter whose DLQ record will outlive half the retention: record a state, not a copy."""
    if not _header(letter, H_LETTER_ID):
        return False
    try:
        written_ms = int(_header(letter, H_DLQ_WRITTEN_AT))
    except ValueError:
        return False
    return retention_ms < 0 or now_ms - written_ms < retention_ms // 2


def failed_state(letter: DeadLetter, now_ms: int) -> DlqLetterState:
    return DlqLetterState(
        letter_id=letter_id(letter),
        status="failed",
        attempts=attempts(letter),
        updated_at_ms=now_ms,
        error_class=letter.error_class,
        error_message=short_message(letter),
        stage=letter.stage,
    )


def dlq_headers(letter: DeadLetter, failed_at: str) -> list[tuple[str, bytes]]:
    """The headers of a dead letter; ``attempts`` and ``first_failed_at`` carry over from a replay."""
    first = _header(letter, H_FIRST_FAILED_AT) or failed_at
    headers = {
        H_ERROR_CLASS: letter.error_class,
        H_ERROR_MESSAGE: short_message(letter),
        H_STAGE: letter.stage,
        H_ATTEMPTS: str(attempts(letter)),
        H_FIRST_FAILED_AT: first,
        H_LAST_FAILED_AT: failed_at,
        H_SOURCE_TOPIC: letter.source_topic,
        H_SOURCE_PARTITION: str(letter.source_partition),
        H_SOURCE_OFFSET: str(letter.source_offset),
        H_BATCH_TOKEN: letter.batch_token,
        H_APP_VERSION: __version__,
        H_LETTER_ID: letter_id(letter),
    }
    replayed_from = _header(letter, H_REPLAYED_FROM)
    if replayed_from:
        headers[H_REPLAYED_FROM] = replayed_from
    return [(name, value.encode()) for name, value in headers.items()]


class DlqWriter:
    """Sends dead letters durably; ``send`` returns only once every letter is acknowledged."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer | None = None) -> None:
        self._settings = settings
        self._producer = producer or reliable_producer(settings, client_id=f"{settings.kafka_client_id}-dlq")
        self.topic = settings.topic_dlq
        self.state_topic = settings.topic_dlq_state

    async def start(self) -> None:
        await start_client(self._producer, self._settings)
        # A producer that has sent nothing yet asks the broker for every topic's metadata at each
        # refresh (metadata_max_age, 5 min) and keeps it: ~11,000 partitions' objects on a broker of
        # 4,500 topics, a new copy every refresh. Naming its two topics now keeps it to them.
        await self._producer.client.set_topics([self.topic, self.state_topic])

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Publish ``letters`` and await every delivery; ``DlqWriteError`` if any is not durable."""
        if not letters:
            return
        failed_at, now_ms = now_iso(), time_ns() // 1_000_000
        retention = self._settings.dlq_retention_ms
        try:
            futures = []
            for letter in letters:
                if fails_again(letter, now_ms, retention):
                    state = failed_state(letter, now_ms)
                    value = state.model_dump_json().encode()
                    send = self._producer.send(self.state_topic, value, key=state.letter_id.encode())
                else:
                    headers = dlq_headers(letter, failed_at)
                    send = self._producer.send(self.topic, letter.value, key=letter.key, headers=headers)
                futures.append(await send)
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
