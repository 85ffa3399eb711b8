"""The dead-letter (parking) queues: list what is parked and why; replay it through the hub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hub.broker import STEPS, Channel, Outgoing, Topology, drain
from hub.steps.runner import ATTEMPT, MESSAGE_ID, REASON


@dataclass(frozen=True)
class Parked:
    step: str
    message_id: str
    reason: str
    attempts: int
    parked_at: int


def list_parked(amqp_url: str, topology: Topology) -> list[Parked]:
    """Everything parked, without removing it (messages go back when the read ends)."""
    out = []
    for step in STEPS:
        for msg, _ack in drain(amqp_url, topology.parked_queue(step)):
            out.append(Parked(step, str(msg.headers.get(MESSAGE_ID, "?")),
                              str(msg.headers.get(REASON, "")), int(msg.headers.get(ATTEMPT, 0)),
                              int(msg.headers.get("x-hub-parked-at", 0))))
    return out


def replay(amqp_url: str, topology: Topology, step: str | None = None,
           message_id: str | None = None,
           on_replay: Callable[[str, str], None] | None = None) -> int:
    """Send parked messages back to their step with a fresh attempt count.

    Each is published (and confirmed) before it is removed from the parking queue, so a
    crash during replay loses nothing. A replayed delivery meets the consent gate again.
    """
    count = 0
    publisher = Channel(amqp_url)
    try:
        for s in ([step] if step else STEPS):
            for msg, ack in drain(amqp_url, topology.parked_queue(s)):
                if message_id and msg.headers.get(MESSAGE_ID) != message_id:
                    continue
                headers = {k: v for k, v in msg.headers.items()
                           if k not in (REASON, "x-hub-parked-at")}
                headers[ATTEMPT] = 0
                headers["x-hub-replayed"] = int(msg.headers.get("x-hub-replayed", 0)) + 1
                if on_replay:  # recorded before it goes back, like every other disclosure step
                    on_replay(s, str(msg.headers.get(MESSAGE_ID, "?")))
                publisher.publish(Outgoing(topology.work_exchange, s, msg.body, headers))
                ack()
                count += 1
    finally:
        publisher.close()
    return count
