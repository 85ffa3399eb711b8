"""Stand-in agency systems: small HTTP receivers for the demo, `make run` and the tests.

A receiver records every request, honours `Idempotency-Key` as a real receiving system
should (a repeat is answered 200 and not counted again), and can be switched to fail.
`GET /received` lists what it accepted, newest last, so a person can see what arrived.
Stand-ins are for development: they hold what they receive in memory, unencrypted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    document: Any
    at: float = field(default_factory=time.monotonic)  # when it arrived
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class PartnerState:
    accepted: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)  # by Idempotency-Key, every try
    attempt_times: list[float] = field(default_factory=list)  # monotonic time of every try
    fail_with: int | None = None  # answer this status instead of accepting
    on_receive: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class PartnerServer:
    def __init__(self, name: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.name = name
        self.state = PartnerState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                key = self.headers.get("Idempotency-Key", "")
                with state.lock:
                    state.attempts[key] += 1
                    state.attempt_times.append(time.monotonic())
                    fail = state.fail_with
                    repeat = key and state.attempts[key] > 1 and any(
                        r.headers.get("Idempotency-Key") == key for r in state.accepted)
                if fail:
                    self._answer(fail, {"error": "unavailable"})
                    return
                received = Received(self.path, dict(self.headers.items()), orjson.loads(raw))
                if not repeat:
                    if state.on_receive:
                        state.on_receive(received)
                    with state.lock:
                        state.accepted.append(received)
                self._answer(200 if repeat else 201, {"ok": True})

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") not in ("", "/received"):
                    self._answer(404, {"error": "see /received"})
                    return
                with state.lock:
                    listed = [{"received_at": r.received_at.isoformat(), "path": r.path,
                               "message_id": r.headers.get("X-Hub-Message-Id", ""),
                               "delivery_id": r.headers.get("X-Hub-Delivery-Id", ""),
                               "content_type": r.headers.get("Content-Type", ""),
                               "document": r.document} for r in state.accepted]
                self._answer(200, {"stand_in": name, "received": listed})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test and demo output clean
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"partner-{name}")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "PartnerServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message_ids(self) -> list[str]:
        with self.state.lock:
            return [r.headers.get("X-Hub-Message-Id", "") for r in self.state.accepted]
