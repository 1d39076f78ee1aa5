"""Logging set-up: one line per event, console or JSON. Every finished line is redacted of known secrets."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from streamer.settings import Settings

_REDACTED = "**********"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return base


class _Redacting(logging.Formatter):
    """Formats with ``inner``, then replaces every known secret in the finished line: the message,
    its structured fields and any traceback alike (a last line of defence behind SecretStr)."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self._inner = inner
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                # JSON lines carry a secret with its special characters escaped: match that form too.
                forms.update((secret, orjson.dumps(secret).decode()[1:-1], repr(secret)[1:-1]))
        self._forms = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self._inner.format(record)
        for form in self._forms:
            line = line.replace(form, _REDACTED)
        return line


def configure_logging(settings: Settings, secrets: list[str] | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    inner: logging.Formatter
    if settings.log_format == "json":
        inner = _JsonFormatter()
    else:
        inner = _ConsoleFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(_Redacting(inner, secrets if secrets is not None else settings.secret_values()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one event with structured fields (site, window, sync_id, ...)."""
    logger.log(level, event, extra={"fields": fields})
