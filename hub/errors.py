"""The hub's error vocabulary. Library errors are translated into these where they enter.

Transient errors are retried with backoff; permanent ones park the message; bad input is the
sender's to fix; denials are authorisation or consent decisions, never retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Reached(StrEnum):
    """What became of a push's bytes, as far as the hub can tell (the accounting reports it)."""

    NOT_SENT = "not-sent"  # no connection was made: nothing left the hub
    REFUSED = "refused"  # the partner received it and answered 4xx
    ERROR_ANSWER = "error-answer"  # the partner received it and answered 5xx (or 408, 429)
    TIMED_OUT = "timed-out"  # sent, and no answer came in time
    NO_ANSWER = "no-answer"  # sent, and the connection broke before an answer


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class TransientError(HubError):
    """Worth retrying: a partner or service is down or slow."""

    def __init__(self, message: str, reached: Reached | None = None) -> None:
        super().__init__(message)
        self.reached = reached


class PermanentError(HubError):
    """Retrying will not help: park the message for a person to look at."""

    def __init__(self, message: str, reached: Reached | None = None) -> None:
        super().__init__(message)
        self.reached = reached


@dataclass
class Problem:
    """One thing wrong with an input, located by JSON path (or file and line)."""

    path: str
    message: str


def json_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a JSON path: $.incident.charges[0].statute."""
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@dataclass
class BadInput(HubError):
    """The sender's input is wrong; every problem is listed so it can be fixed in one go."""

    title: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        listed = "; ".join(f"{p.path}: {p.message}" for p in self.problems)
        return f"{self.title}: {listed}" if listed else self.title


class ConfigError(HubError):
    """A configuration or data file is wrong; the message names file, place and field."""


class Unauthenticated(HubError):
    """No valid credentials were presented."""


class Forbidden(HubError):
    """Credentials are valid but do not allow this action."""


class NotFound(HubError):
    """The thing asked for does not exist (or is not the caller's to see)."""


class Conflict(HubError):
    """The request contradicts what the hub already holds (e.g. a reused idempotency key)."""


class BrokerUnavailable(TransientError):
    """RabbitMQ refused, dropped or did not confirm a publish."""


class DatabaseUnavailable(TransientError):
    """The database cannot be reached: at start-up, or mid-work (steps then pause, uncounted)."""


class Busy(TransientError):
    """Another worker holds this work right now; try later without counting an attempt."""
