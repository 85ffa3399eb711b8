"""RabbitMQ through pika: the hub's only broker. pika's errors are translated here and go no further.

Topology for prefix P and each step S (ingest, route, deliver):
  exchange P (direct)          --S-->      quorum queue P.S          (work)
  exchange P.retry (direct)    --S.n-->    quorum queue P.S.retry.n  (TTL = delay n, then back to P/S)
  exchange P.parked (direct)   --S-->      quorum queue P.S.parked   (dead letters, replayable)
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from hub.errors import BrokerUnavailable, PermanentError

STEPS = ("ingest", "route", "deliver")
QUORUM = {"x-queue-type": "quorum"}
PERSISTENT = 2


@dataclass(frozen=True)
class Topology:
    prefix: str
    retry_delays_ms: tuple[int, ...]

    @property
    def work_exchange(self) -> str:
        return self.prefix

    @property
    def retry_exchange(self) -> str:
        return f"{self.prefix}.retry"

    @property
    def parked_exchange(self) -> str:
        return f"{self.prefix}.parked"

    def work_queue(self, step: str) -> str:
        return f"{self.prefix}.{step}"

    def retry_queue(self, step: str, level: int) -> str:
        return f"{self.prefix}.{step}.retry.{level}"

    def parked_queue(self, step: str) -> str:
        return f"{self.prefix}.{step}.parked"

    def exchanges(self) -> list[str]:
        return [self.work_exchange, self.retry_exchange, self.parked_exchange]

    def queues(self) -> list[tuple[str, dict[str, Any]]]:
        """Every queue with its arguments."""
        out: list[tuple[str, dict[str, Any]]] = []
        for step in STEPS:
            out.append((self.work_queue(step), dict(QUORUM)))
            out.append((self.parked_queue(step), dict(QUORUM)))
            for level, delay in enumerate(self.retry_delays_ms):
                out.append((self.retry_queue(step, level), {
                    **QUORUM,
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": self.work_exchange,
                    "x-dead-letter-routing-key": step,
                    # the move back to work must not lose a message
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                }))
        return out

    def bindings(self) -> list[tuple[str, str, str]]:
        """(exchange, queue, routing key)."""
        out = []
        for step in STEPS:
            out.append((self.work_exchange, self.work_queue(step), step))
            out.append((self.parked_exchange, self.parked_queue(step), step))
            out += [(self.retry_exchange, self.retry_queue(step, level), f"{step}.{level}")
                    for level in range(len(self.retry_delays_ms))]
        return out

    def declare(self, ch: BlockingChannel) -> None:
        for exchange in self.exchanges():
            ch.exchange_declare(exchange, "direct", durable=True)
        for name, arguments in self.queues():
            ch.queue_declare(name, durable=True, arguments=arguments)
        for exchange, queue_name, key in self.bindings():
            ch.queue_bind(queue_name, exchange, key)

    def definitions(self, vhost: str = "/") -> dict[str, Any]:
        """The topology as RabbitMQ definitions JSON, for operators who pre-declare it."""
        return {
            "exchanges": [{"name": e, "vhost": vhost, "type": "direct", "durable": True,
                           "auto_delete": False, "internal": False, "arguments": {}}
                          for e in self.exchanges()],
            "queues": [{"name": n, "vhost": vhost, "durable": True, "auto_delete": False,
                        "arguments": a} for n, a in self.queues()],
            "bindings": [{"source": e, "vhost": vhost, "destination": q,
                          "destination_type": "queue", "routing_key": k, "arguments": {}}
                         for e, q, k in self.bindings()],
        }

    def delete(self, ch: BlockingChannel) -> None:
        """Remove every queue and exchange of this prefix (tests and the demo clean up)."""
        for name, _ in self.queues():
            ch.queue_delete(name)
        for exchange in self.exchanges():
            ch.exchange_delete(exchange)


@dataclass
class Delivered:
    """A message as a consumer sees it."""

    body: bytes
    headers: dict[str, Any]
    delivery_tag: int
    redelivered: bool


@dataclass
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.heartbeat = 60
    params.blocked_connection_timeout = 30
    params.connection_attempts = 3
    params.retry_delay = 1
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        raise BrokerUnavailable(f"cannot reach RabbitMQ at {params.host}:{params.port} "
                                f"({type(exc).__name__})") from None


class Channel:
    """A confirmed channel: every publish returns only once RabbitMQ has it durably."""

    def __init__(self, url: str) -> None:
        self._conn = _connect(url)
        self._ch = self._conn.channel()
        self._ch.confirm_delivery()

    @property
    def raw(self) -> BlockingChannel:
        return self._ch

    def is_open(self) -> bool:
        return bool(self._conn.is_open and self._ch.is_open)

    def publish(self, out: Outgoing) -> None:
        props = pika.BasicProperties(
            delivery_mode=PERSISTENT, content_type="application/octet-stream", headers=out.headers
        )
        try:
            self._ch.basic_publish(out.exchange, out.routing_key, out.body, props, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise PermanentError(f"no queue bound for {out.exchange}/{out.routing_key}") from None
        except pika.exceptions.NackError:
            raise BrokerUnavailable("RabbitMQ refused the message (nack)") from None
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"publish failed: {type(exc).__name__}") from None

    def sleep(self, seconds: float) -> None:
        """Wait while answering RabbitMQ's heartbeats, so a held message keeps its channel."""
        try:
            self._conn.sleep(seconds)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"lost RabbitMQ while waiting: {type(exc).__name__}") from None

    def close(self) -> None:
        try:
            if self._conn.is_open:
                self._conn.close()
        except pika.exceptions.AMQPError:
            pass


class PublisherPool:
    """Confirmed channels shared by the API's request threads (pika channels are not thread-safe)."""

    def __init__(self, url: str, size: int = 8) -> None:
        self._url = url
        self._idle: queue.LifoQueue[Channel] = queue.LifoQueue(maxsize=size)

    @contextmanager
    def channel(self) -> Iterator[Channel]:
        try:
            ch = self._idle.get_nowait()
        except queue.Empty:
            ch = Channel(self._url)
        ok = False
        try:
            yield ch
            ok = True
        finally:
            if ok and ch.is_open():
                try:
                    self._idle.put_nowait(ch)
                except queue.Full:
                    ch.close()
            else:
                ch.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _delivered(method: Any, props: Any, body: bytes) -> Delivered:
    return Delivered(body=body, headers=dict(props.headers or {}),
                     delivery_tag=method.delivery_tag, redelivered=method.redelivered)


class Consumer:
    """A competing consumer of one work queue, with manual acks and a bounded prefetch."""

    def __init__(self, url: str, queue_name: str, prefetch: int) -> None:
        self.channel = Channel(url)
        self._queue = queue_name
        self._prefetch = prefetch
        self._stop = threading.Event()

    def ack(self, msg: Delivered) -> None:
        self.channel.raw.basic_ack(msg.delivery_tag)

    def run(self, handle: Callable[[list[Delivered]], None], max_batch: int = 1,
            fill_wait: float = 0.005) -> None:
        """Hand messages over in batches: what prefetch already holds, up to `max_batch`,
        waiting at most `fill_wait` seconds for more once one has arrived."""
        ch = self.channel.raw
        ch.basic_qos(prefetch_count=self._prefetch)
        try:
            stream = ch.consume(self._queue, inactivity_timeout=0.5)
            for method, props, body in stream:
                if self._stop.is_set():
                    break
                if method is None:  # inactivity tick: lets stop() take effect
                    continue
                batch = [_delivered(method, props, body)]
                deadline = time.monotonic() + fill_wait
                while len(batch) < max_batch:
                    if not ch.get_waiting_message_count():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        ch.connection.process_data_events(time_limit=left)
                        if not ch.get_waiting_message_count():
                            break
                    method, props, body = next(stream)
                    if method is None:
                        break
                    batch.append(_delivered(method, props, body))
                handle(batch)
        except pika.exceptions.AMQPError as exc:
            if not self._stop.is_set():
                raise BrokerUnavailable(f"consumer lost RabbitMQ: {type(exc).__name__}") from None
        finally:
            self.channel.close()

    def idle(self, seconds: float) -> bool:
        """Hold what was delivered and take nothing new for a while; False once stopping.

        Messages in hand stay unacknowledged, and prefetch caps how many more can arrive
        (they wait, unhandled); sleeping through the connection keeps its heartbeats going.
        """
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.channel.sleep(min(left, 0.5))  # short slices: stop() takes effect promptly
        return False

    def stop(self) -> None:
        self._stop.set()


def declare_topology(url: str, topology: Topology) -> None:
    ch = Channel(url)
    try:
        topology.declare(ch.raw)
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise PermanentError(
            f"RabbitMQ refused the topology ({exc.reply_text}); queues with the same names but "
            "other arguments exist: delete them or use another HUB_BROKER_PREFIX"
        ) from None
    finally:
        ch.close()


def delete_topology(url: str, topology: Topology) -> None:
    ch = Channel(url)
    try:
        topology.delete(ch.raw)
    finally:
        ch.close()


def drain(url: str, queue_name: str) -> Iterator[tuple[Delivered, Callable[[], None]]]:
    """Take messages from a queue one by one; each comes with a function that acks it.

    Messages not acked go back to the queue when the iteration ends.
    """
    ch = Channel(url)
    try:
        while True:
            method, props, body = ch.raw.basic_get(queue_name, auto_ack=False)
            if method is None:
                return
            tag = method.delivery_tag
            msg = Delivered(body, dict(props.headers or {}), tag, method.redelivered)
            yield msg, (lambda t=tag: ch.raw.basic_ack(t))
    finally:
        ch.close()
