"""The one error tree of streamer.

Every error the pipeline raises on purpose is a ``StreamerError``. The split that matters is
*transient* (wait and retry: nothing is lost, the stream pauses) against *permanent* (retrying the
same input gives the same answer: the input is rejected, counted and, for records, routed to the DLQ)::

    StreamerError
    ├── ConfigError                 bad setting; start-up stops with one line naming it
    ├── SchemaError                 ClickHouse schema older than the code (names the missing migration)
    ├── QueryError                  a query API caller must change the request (HTTP 4xx, CLI one line)
    ├── TransientError              retry with backoff
    │   ├── AceTransientError       5xx, 413, 429, timeout, connection error, truncated/invalid JSON,
    │   │                           a body or listing over a cap, a listing that disagrees with itself
    │   ├── KafkaTransientError     broker unreachable, request timed out
    │   └── SinkTransientError      ClickHouse unreachable, timeout, 5xx, too many parts, memory limit
    └── PermanentError              do not retry the same input
        ├── AceError                the ACE API refused the request
        │   ├── AceAuthError        401: token wrong or expired; the site's sync stops
        │   ├── AceClientError      other 4xx (status and a token-free excerpt of the body)
        │   ├── AceRetriesExhausted transient errors outlasted the retry budget; the window fails
        │   └── PaginationError     repeated cursor or page cap; the window fails, watermark stays
        ├── RecordDecodeError       a Kafka record that is not valid JSON or not the schema
        ├── FutureSampleError       samples dated after now + max_future_s (their own dead letter)
        ├── SyncStateError          a site's ace.sync record cannot be decoded: the site stops until reset
        ├── SinkPermanentError      ClickHouse rejected the rows (bad data, schema mismatch)
        └── DlqWriteError           the DLQ itself cannot be written: the worker must crash

Library errors are translated where the library is called (``raise AceTransientError(...) from exc``),
so callers only ever catch this tree. Messages never include secrets.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base of every error streamer raises on purpose."""


class ConfigError(StreamerError):
    """A setting is missing or invalid."""


class SchemaError(StreamerError):
    """The ClickHouse schema lacks a migration the code needs."""


class QueryError(StreamerError):
    """A query the caller must change: bad parameter, unknown site or point, writing SQL."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TransientError(StreamerError):
    """Retrying later may succeed."""


class AceTransientError(TransientError):
    """The ACE API failed in a way worth retrying."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class KafkaTransientError(TransientError):
    """The Kafka broker could not be reached or timed out."""


class SinkTransientError(TransientError):
    """ClickHouse is unavailable or overloaded for now."""


class PermanentError(StreamerError):
    """Retrying the same input gives the same answer."""


class AceError(PermanentError):
    """The ACE API refused a request."""


class AceAuthError(AceError):
    """401: the token is wrong or expired."""


class AceClientError(AceError):
    """A 4xx other than 401 and 429."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AceRetriesExhausted(AceError):
    """Transient failures outlasted the retry budget."""


class PaginationError(AceError):
    """A cursor repeated within one walk, or the walk exceeded the page cap."""


class RecordDecodeError(PermanentError):
    """A Kafka record is not valid JSON or does not match its schema."""


class FutureSampleError(PermanentError):
    """Samples dated later than now plus ``max_future_s``: dead-lettered apart from their record."""


class SyncStateError(PermanentError):
    """A site's ``ace.sync`` record cannot be decoded; the site fails until an operator resets it."""


class SinkPermanentError(PermanentError):
    """ClickHouse rejected the rows themselves."""


class DlqWriteError(PermanentError):
    """The dead-letter queue could not be written; committing would lose data."""
