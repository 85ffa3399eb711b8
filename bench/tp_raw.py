"""The raw limit for bench/throughput.py: the hub's hops in bare pika, no hub code.

    producer --(quorum queue A, confirms)--> stage A --(quorum queue B, confirms)--> stage B
        --> 2 partners (HTTP)

Each job is a diversion-notice-sized JSON document sealed with AES-256-GCM (nonce || ciphertext,
as the hub seals jobs). Each stage takes what prefetch (64) holds, opens the jobs, writes
ledger-like rows (message id, delivery id, field path, decision, HMAC-SHA256 of the value) in
ONE transaction per batch with SQLAlchemy Core executemany, and acknowledges the batch with one
multiple-ack once its follow-ups are confirmed (stage A: 15 rows per message, then one
follow-up per message published with pipelined confirms) or its pushes answered (stage B: a
referral for the provider and a notice for the DA, 15 rows per delivery committed before any
byte leaves, then the POSTs over keep-alive connections: see `Pusher`).

Pipelined confirms use pika's blocking connection with an asynchronous confirm callback on the
underlying channel (`channel._impl`): pika's blocking `confirm_delivery()` waits for each
publish on its own, which is exactly the per-message round trip the raw limit must not have.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pika
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BATCH = 64
ROWS_PER_DELIVERY = 15
HMAC_KEY = b"bench-ledger-key"


def table(metadata: Any) -> Any:
    from sqlalchemy import Column, DateTime, Index, Integer, String, Table

    t = Table(
        "raw_ledger", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("stage", String(8), nullable=False),
        Column("message_id", String(36), nullable=False),
        Column("delivery_id", String(36), nullable=False),
        Column("recipient", String(64), nullable=False),
        Column("field_path", String(200), nullable=False),
        Column("decision", String(16), nullable=False),
        Column("value_hmac", String(64), nullable=False),
    )
    Index("raw_ledger_message", t.c.message_id)
    Index("raw_ledger_delivery", t.c.delivery_id)
    return t


def make_engine(url: str) -> Any:
    """The same connection settings as the hub's (WAL and synchronous=NORMAL on SQLite)."""
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def create_schema(url: str) -> None:
    from sqlalchemy import MetaData

    md = MetaData()
    table(md)
    engine = make_engine(url)
    md.create_all(engine)
    engine.dispose()


def _connect(amqp_url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url)
    params.heartbeat = 60
    return pika.BlockingConnection(params)


def declare(amqp_url: str, queues: list[str]) -> None:
    conn = _connect(amqp_url)
    ch = conn.channel()
    for q in queues:
        ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()


class ConfirmedPublisher:
    """Publishes persistent messages with confirms in flight together (pipelined)."""

    def __init__(self, conn: pika.BlockingConnection) -> None:
        self._conn = conn
        self._ch = conn.channel()
        self._seq = 0
        self._outstanding: set[int] = set()
        self._nacked = 0
        selected: list[bool] = []
        self._ch._impl.confirm_delivery(ack_nack_callback=self._on_confirm,
                                        callback=lambda _frame: selected.append(True))
        while not selected:
            conn.process_data_events(time_limit=0.05)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked += 1
        tag = method.delivery_tag
        if method.multiple:
            self._outstanding = {t for t in self._outstanding if t > tag}
        else:
            self._outstanding.discard(tag)

    def publish(self, queue_name: str, body: bytes, message_id: str) -> None:
        self._seq += 1
        self._outstanding.add(self._seq)
        self._ch.basic_publish("", queue_name, body, pika.BasicProperties(
            delivery_mode=2, content_type="application/octet-stream", message_id=message_id))

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def wait(self, at_most: int = 0, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self._outstanding) > at_most:
            if time.monotonic() > deadline:
                raise TimeoutError("RabbitMQ did not confirm the publishes in time")
            self._conn.process_data_events(time_limit=0.01)
        if self._nacked:
            raise RuntimeError(f"RabbitMQ refused {self._nacked} message(s) (nack)")


def producer_main(amqp_url: str, queue_name: str, documents: list[bytes], key_b64: str,
                  go: Any, out: Any) -> None:
    """Publish every document sealed, recording each message's publish time."""
    try:
        aead = AESGCM(base64.b64decode(key_b64))
        conn = _connect(amqp_url)
        pub = ConfirmedPublisher(conn)
        ids = [str(uuid.uuid4()) for _ in documents]
        go.wait()
        times: list[tuple[str, float]] = []
        for mid, doc in zip(ids, documents, strict=False):
            if pub.outstanding >= 1000:
                pub.wait(at_most=500)
            job = orjson.dumps({"message_id": mid, "type": "diversion-notice",
                                "body": orjson.loads(doc)})
            nonce = os.urandom(12)
            times.append((mid, time.monotonic()))
            pub.publish(queue_name, nonce + aead.encrypt(nonce, job, None), mid)
        pub.wait()
        conn.close()
        out.put(("times", times))
    except Exception as exc:  # noqa: BLE001 (reported to the parent, which says what failed)
        out.put(("error", f"producer: {type(exc).__name__}: {exc}"))


def _flatten(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(doc, dict):
        out: list[tuple[str, Any]] = []
        for k, v in doc.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(doc, list):
        out = []
        for i, v in enumerate(doc):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, doc)]


def _rows(stage: str, message_id: str, delivery_id: str, recipient: str, body: Any,
          now: datetime) -> list[dict[str, Any]]:
    fields = _flatten(body)
    while len(fields) < ROWS_PER_DELIVERY:  # pad: every delivery writes the same row count
        fields.append((f"extra[{len(fields)}]", len(fields)))
    return [{"recorded_at": now, "stage": stage, "message_id": message_id,
             "delivery_id": delivery_id, "recipient": recipient, "field_path": path,
             "decision": "disclosed",
             "value_hmac": hmac.new(HMAC_KEY, orjson.dumps(value), hashlib.sha256).hexdigest()}
            for path, value in fields[:ROWS_PER_DELIVERY]]


class Pusher:
    """A batch's POSTs over keep-alive connections.

    `httpx`: one httpx.Client (the HTTP library the hub uses), the batch's posts one after
    another. `lean`: 16 connections per partner of a minimal asyncio HTTP/1.1 client
    (bench/tp_http.py), the batch's posts concurrently: what the hardware allows.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "httpx":
            import httpx

            self._client = httpx.Client(timeout=10)
        elif kind == "lean":
            self._loop = asyncio.new_event_loop()
            self._pools: dict[str, list[Any]] = {}
        else:
            raise ValueError(f"no HTTP client {kind!r}: httpx or lean")

    def push(self, posts: list[tuple[str, bytes, str, str]]) -> None:
        if self.kind == "httpx":
            for url, content, did, mid in posts:
                r = self._client.post(url, content=content, headers=_headers(did, mid))
                r.raise_for_status()
            return
        self._loop.run_until_complete(self._push_lean(posts))

    async def _push_lean(self, posts: list[tuple[str, bytes, str, str]]) -> None:
        from urllib.parse import urlsplit

        from tp_http import HttpConn

        by_url: dict[str, list[tuple[bytes, str, str]]] = {}
        for url, content, did, mid in posts:
            by_url.setdefault(url, []).append((content, did, mid))

        async def drain(conn: Any, path: str, work: list[tuple[bytes, str, str]]) -> None:
            while work:
                content, did, mid = work.pop()
                status, _ = await conn.request("POST", path, _headers(did, mid), content)
                if status >= 300:
                    raise RuntimeError(f"partner answered HTTP {status}")

        jobs = []
        for url, work in by_url.items():
            parts = urlsplit(url)
            pool = self._pools.setdefault(url, [HttpConn(parts.hostname or "127.0.0.1",
                                                         parts.port or 80) for _ in range(16)])
            jobs += [drain(c, parts.path, work) for c in pool]
        await asyncio.gather(*jobs)

    def close(self) -> None:
        if self.kind == "httpx":
            self._client.close()
        else:
            for pool in self._pools.values():
                for c in pool:
                    c.close()
            self._loop.close()


def _headers(delivery_id: str, message_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Idempotency-Key": delivery_id,
            "X-Hub-Delivery-Id": delivery_id, "X-Hub-Message-Id": message_id}


def stage_main(stage: str, amqp_url: str, in_queue: str, out_queue: str | None, db_url: str,
               key_b64: str, partners: dict[str, str], http: str, ready: Any, stop: Any,
               out: Any) -> None:
    """Consume `in_queue` in batches until `stop` is set (see the module's docstring)."""
    try:
        _stage(stage, amqp_url, in_queue, out_queue, db_url, key_b64, partners, http, ready,
               stop)
    except Exception as exc:  # noqa: BLE001
        out.put(("error", f"stage {stage}: {type(exc).__name__}: {exc}"))


def _stage(stage: str, amqp_url: str, in_queue: str, out_queue: str | None, db_url: str,
           key_b64: str, partners: dict[str, str], http: str, ready: Any, stop: Any) -> None:
    from sqlalchemy import MetaData, insert

    aead = AESGCM(base64.b64decode(key_b64))
    engine = make_engine(db_url)
    ledger = table(MetaData())
    statement = insert(ledger)
    conn = _connect(amqp_url)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=BATCH)
    pub = ConfirmedPublisher(conn) if out_queue else None
    buffer: list[tuple[int, bytes]] = []
    ch.basic_consume(in_queue, lambda _c, method, _p, body: buffer.append(
        (method.delivery_tag, body)))
    pusher = Pusher(http) if not out_queue else None

    ready.set()
    while not stop.is_set():
        conn.process_data_events(time_limit=0 if buffer else 0.02)
        if not buffer:
            continue
        batch, buffer[:] = buffer[:BATCH], buffer[BATCH:]
        jobs = []
        for _tag, sealed in batch:
            jobs.append(orjson.loads(aead.decrypt(sealed[:12], sealed[12:], None)))
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        posts: list[tuple[str, bytes, str, str]] = []
        for job in jobs:
            mid = job["message_id"]
            if out_queue:  # route-like: what to deliver, to whom
                rows += _rows(stage, mid, mid, "route", job["body"], now)
            else:  # deliver-like: two deliveries, ledger first, then the pushes
                for recipient, url in partners.items():
                    did = str(uuid.uuid4())
                    rows += _rows(stage, mid, did, recipient, job["body"], now)
                    posts.append((url, orjson.dumps({"recipient": recipient, **job["body"]}),
                                  did, mid))
        with engine.begin() as db:  # one transaction per batch
            db.execute(statement, rows)
        if pub is not None and out_queue:
            for job in jobs:
                job["deliveries"] = list(partners)
                nonce = os.urandom(12)
                pub.publish(out_queue, nonce + aead.encrypt(nonce, orjson.dumps(job), None),
                            job["message_id"])
            pub.wait()
        if pusher is not None and posts:
            pusher.push(posts)
        ch.basic_ack(delivery_tag=batch[-1][0], multiple=True)
    if pusher is not None:
        pusher.close()
    conn.close()
    engine.dispose()
