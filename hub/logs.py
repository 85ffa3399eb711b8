"""structlog JSON logs with a correlation id per message and no PHI, ever.

Only allow-listed keys pass; any other key's value is replaced, so a careless log call
cannot leak a name or a date of birth.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

SAFE_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger", "correlation_id", "message_id", "delivery_id",
        "step", "site", "agency", "sender", "recipient", "message_type", "form", "status",
        "attempt", "max_attempts", "delay_ms", "error_kind", "reason", "count", "fields",
        "withheld", "duration_ms", "queue", "prefix", "http_status", "method", "path",
        "client_id", "scope", "worker", "pid", "url", "port", "exc_type",
    }
)
REDACTED = "[redacted]"


def strip_phi(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Drop the value of every key not known to be free of PHI."""
    for key in list(event):
        if key not in SAFE_KEYS:
            event[key] = REDACTED
    return event


def configure(level: str = "INFO", stream: Any = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            strip_phi,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger
