"""Looking into RabbitMQ from tests."""

from __future__ import annotations

import pika

from hub.bootstrap import Hub


def depth(hub: Hub, step: str, parked: bool = False) -> int:
    """Messages ready in a step's work (or parking) queue."""
    name = hub.topology.parked_queue(step) if parked else hub.topology.work_queue(step)
    conn = pika.BlockingConnection(pika.URLParameters(hub.settings.amqp_url))
    try:
        return int(conn.channel().queue_declare(name, passive=True).method.message_count)
    finally:
        conn.close()
