"""Waiting out a database outage: the step holds its message, probes, and resumes when it is back.

An outage is no message's fault, so it must not spend any message's retries: an outage longer
than the retry delays would otherwise park everything in flight for a person to replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from hub.errors import DatabaseUnavailable

log = structlog.get_logger("hub.step")

Probe = Callable[[], bool]  # True once the database answers
Idle = Callable[[float], bool]  # wait that long taking no new work; False once stopping


class OutageWait:
    """Probes the database with a growing pause (first, doubling up to longest) until it answers."""

    def __init__(self, probe: Probe, idle: Idle, first: float = 0.5, longest: float = 15.0) -> None:
        self._probe = probe
        self._idle = idle
        self._first = first
        self._longest = longest

    def wait(self, exc: DatabaseUnavailable) -> int | None:
        """Pause until the database answers: how many probes failed first, or None if stopping."""
        log.warning("consumption paused", error_kind=type(exc).__name__, reason=str(exc)[:200])
        started, pause, failed = time.monotonic(), self._first, 0
        while self._idle(pause):
            if self._probe():
                log.warning("consumption resumed", count=failed,
                            duration_ms=round((time.monotonic() - started) * 1000))
                return failed
            failed += 1
            pause = min(pause * 2, self._longest)
        return None
