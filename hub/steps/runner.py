"""Runs one step as a competing consumer: decode, handle, publish what follows, then ack.

The ack comes last, after every follow-up is confirmed by RabbitMQ, so a worker that dies
at any point leaves the message to be redelivered: nothing is lost. Handlers are
idempotent, so a redelivery does no harm.

Only failures of the message itself count toward parking. When the database or RabbitMQ is
out of reach, the worker stops taking messages, counts no attempt, and carries on once the
service is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson
import structlog

from hub.broker import Consumer, Delivered, Outgoing, Topology
from hub.crypto import Sealer
from hub.errors import (
    BadInput,
    BrokerUnavailable,
    Busy,
    ConfigError,
    DatabaseUnavailable,
    PermanentError,
    TransientError,
)
from hub.steps.outage import OutageWait, Probe

ATTEMPT = "x-hub-attempt"
REASON = "x-hub-reason"
MESSAGE_ID = "x-hub-message-id"
CORRELATION_ID = "x-hub-correlation-id"
# The database answered the first probe this many times running, yet this message still lost
# its connection: the message is the cause, and its failures count like any other's.
QUICK_RECOVERIES = 3

log = structlog.get_logger("hub.step")


@dataclass(frozen=True)
class Job:
    step: str
    body: dict[str, Any]
    message_id: str
    attempt: int
    final_attempt: bool
    redelivered: bool


@dataclass(frozen=True)
class Next:
    """Work for a following step."""

    step: str
    body: dict[str, Any]


Handle = Callable[[Job], list[Next]]
# What a batch handler says of each job: its follow-ups, the error it failed with, or None
# when the job is to be handled alone (the runner then calls the handler for it).
Outcome = list[Next] | Exception | None


@runtime_checkable
class BatchHandle(Protocol):
    """A step that handles what prefetch holds as one unit (one transaction, concurrent I/O).

    A job that fails fails alone: its Outcome is its error, and the others go on."""

    def __call__(self, job: Job) -> list[Next]: ...

    def handle_batch(self, jobs: list[Job]) -> list[Outcome]: ...


class JobCodec:
    """Jobs travel sealed: the broker never holds readable PHI."""

    def __init__(self, sealer: Sealer, topology: Topology) -> None:
        self._sealer = sealer
        self.topology = topology

    def encode(self, step: str, body: dict[str, Any], message_id: str, attempt: int = 0) -> Outgoing:
        return Outgoing(
            exchange=self.topology.work_exchange,
            routing_key=step,
            body=self._sealer.seal(orjson.dumps(body)),
            headers={MESSAGE_ID: message_id, CORRELATION_ID: message_id, ATTEMPT: attempt},
        )

    def decode(self, msg: Delivered) -> dict[str, Any]:
        return orjson.loads(self._sealer.open(msg.body))  # type: ignore[no-any-return]


class StepRunner:
    def __init__(
        self, step: str, handle: Handle, codec: JobCodec, amqp_url: str, prefetch: int,
        database_answers: Probe, batch: int = 1,
    ) -> None:
        self.step = step
        self._handle = handle
        self._batch = batch if isinstance(handle, BatchHandle) else 1
        self._codec = codec
        self._topology = codec.topology
        self._max_attempts = len(self._topology.retry_delays_ms) + 1
        self._consumer = Consumer(amqp_url, self._topology.work_queue(step), prefetch)
        self._outage = OutageWait(database_answers, self._consumer.idle)

    def run(self) -> None:
        log.info("worker started", step=self.step, queue=self._topology.work_queue(self.step))
        self._consumer.run(self._on_batch, self._batch)

    def stop(self) -> None:
        self._consumer.stop()

    def _on_batch(self, msgs: list[Delivered]) -> None:
        """Handle a batch as one unit where the step can, then settle each message alone."""
        outcomes: list[Outcome] = [None] * len(msgs)
        if len(msgs) > 1:
            jobs: list[Job] = []
            at: list[int] = []
            for i, msg in enumerate(msgs):
                try:
                    jobs.append(self._job(msg))
                    at.append(i)
                except Exception:  # noqa: BLE001 (settled alone below, which parks it)
                    continue
            try:
                for i, outcome in zip(at, self._handle.handle_batch(jobs),  # type: ignore[attr-defined]
                                      strict=True):
                    outcomes[i] = outcome
            except DatabaseUnavailable:
                pass  # each message then meets the outage alone, and waits it out
            except Exception as exc:  # a bug in the batch path: fall back to one at a time
                log.exception("batch failed; handling its messages one by one",
                              exc_type=type(exc).__name__, count=len(msgs))
        for msg, outcome in zip(msgs, outcomes, strict=True):
            self._on_message(msg, outcome)

    def _job(self, msg: Delivered) -> Job:
        attempt = int(msg.headers.get(ATTEMPT, 0))
        return Job(step=self.step, body=self._codec.decode(msg),
                   message_id=str(msg.headers.get(MESSAGE_ID, "unknown")), attempt=attempt,
                   final_attempt=attempt + 1 >= self._max_attempts, redelivered=msg.redelivered)

    def _on_message(self, msg: Delivered, outcome: Outcome = None) -> None:
        message_id = str(msg.headers.get(MESSAGE_ID, "unknown"))
        attempt = int(msg.headers.get(ATTEMPT, 0))
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            correlation_id=msg.headers.get(CORRELATION_ID, message_id),
            message_id=message_id,
            step=self.step,
            attempt=attempt,
        ):
            quick_recoveries = 0
            while outage := self._settle(msg, message_id, attempt,
                                         outage_counts=quick_recoveries >= QUICK_RECOVERIES,
                                         outcome=outcome):
                outcome = None  # after an outage, the message is handled again, alone
                failed_probes = self._outage.wait(outage)
                if failed_probes is None:
                    return  # stopping: unacked, so RabbitMQ gives the message to the next worker
                quick_recoveries = quick_recoveries + 1 if failed_probes == 0 else 0
            self._consumer.ack(msg)
            log.debug("handled", duration_ms=round((time.perf_counter() - started) * 1000, 2))

    def _settle(self, msg: Delivered, message_id: str, attempt: int,
                outage_counts: bool, outcome: Outcome = None) -> DatabaseUnavailable | None:
        """Handle the message (or take its batch's outcome), or schedule its retry, or park it.

        Returns the database outage that kept it from being handled, if one did (and does not
        count): the caller holds the message until the database is back.
        """
        try:
            if isinstance(outcome, Exception):
                raise outcome
            follow_ups = outcome if outcome is not None else self._handle(self._job(msg))
            for nxt in follow_ups:
                self._consumer.channel.publish(self._codec.encode(nxt.step, nxt.body, message_id))
        except DatabaseUnavailable as exc:
            if not outage_counts:
                return exc
            self._failed(msg, attempt, exc)
        except BrokerUnavailable:
            raise  # the worker drops its connection and reconnects; unacked, nothing counted
        except Busy as exc:
            self._retry(msg, attempt, str(exc), count=False)
        except TransientError as exc:
            self._failed(msg, attempt, exc)
        except (PermanentError, BadInput, ConfigError) as exc:
            self._park(msg, str(exc))
        except Exception as exc:  # a bug must park the message, never lose or loop it
            log.exception("unexpected error", exc_type=type(exc).__name__)
            self._park(msg, f"internal error ({type(exc).__name__}); see hub logs")
        return None

    def _failed(self, msg: Delivered, attempt: int, exc: TransientError) -> None:
        """A counted failure: retried after a growing delay, parked once the delays are spent."""
        if attempt + 1 < self._max_attempts:
            self._retry(msg, attempt, str(exc), count=True)
        else:
            self._park(msg, f"gave up after {attempt + 1} attempts: {exc}")

    def _retry(self, msg: Delivered, attempt: int, reason: str, count: bool) -> None:
        levels = len(self._topology.retry_delays_ms)
        level = min(attempt, levels - 1) if count else 0
        headers = {**msg.headers, ATTEMPT: attempt + 1 if count else attempt, REASON: reason[:300]}
        self._consumer.channel.publish(
            Outgoing(self._topology.retry_exchange, f"{self.step}.{level}", msg.body, headers)
        )
        log.info(
            "retry scheduled",
            delay_ms=self._topology.retry_delays_ms[level],
            reason=reason[:200],
        )

    def _park(self, msg: Delivered, reason: str) -> None:
        headers = {**msg.headers, REASON: reason[:500], "x-hub-parked-at": int(time.time())}
        self._consumer.channel.publish(
            Outgoing(self._topology.parked_exchange, self.step, msg.body, headers)
        )
        log.warning("parked", reason=reason[:200])
