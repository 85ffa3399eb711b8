"""HTTP for bench/throughput.py: a lean load-generating client and the partner receivers.

Both are small asyncio HTTP/1.1 implementations rather than httpx or http.server, so that the
benchmark's own share of this machine's cores stays small next to what it measures. They
import no hub code: the benchmark talks to the hub only over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import queue
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

# ---------------------------------------------------------------------------------------------
# Partner receivers (run in their own process)
# ---------------------------------------------------------------------------------------------

OK_BODY = b'{"ok":true}'
REQUEST_TIMEOUT = 30.0  # seconds a submission may take before it counts as failed


def receivers_main(names: list[str], pipe: Connection, events: Any) -> None:
    """Run one HTTP receiver per name; send (name, message_id, monotonic time, repeat) batches.

    `time.monotonic()` is CLOCK_MONOTONIC, the same clock in every process on Linux, so arrival
    times compare with the submit times the parent records.
    """
    asyncio.run(_receivers(names, pipe, events))


async def _receivers(names: list[str], pipe: Connection, events: Any) -> None:
    parent = os.getppid()
    pending: list[tuple[str, str | None, float, bool]] = []
    seen: set[bytes] = set()

    def handler_for(name: str) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    request_line, _, rest = head.partition(b"\r\n")
                    headers = _parse_headers(rest)
                    body = await _read_body(reader, headers)
                    del body
                    now = time.monotonic()
                    if request_line.startswith(b"POST"):
                        key = headers.get(b"idempotency-key", b"")
                        repeat = bool(key) and key in seen
                        if key:
                            seen.add(key)
                        mid = headers.get(b"x-hub-message-id")
                        pending.append((name, mid.decode() if mid else None, now, repeat))
                        status = b"200 OK" if repeat else b"201 Created"
                    else:
                        status = b"200 OK"
                    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json"
                                 b"\r\nContent-Length: 11\r\n\r\n" + OK_BODY)
                    if headers.get(b"connection", b"").lower() == b"close":
                        break
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                pass
            finally:
                writer.close()

        return handle

    servers = [await asyncio.start_server(handler_for(n), "127.0.0.1", 0, backlog=512)
               for n in names]
    pipe.send({n: s.sockets[0].getsockname()[1] for n, s in zip(names, servers, strict=False)})
    try:
        while True:
            await asyncio.sleep(0.02)
            if pending:
                batch, pending[:] = list(pending), []
                events.put(batch)
            if pipe.poll() or os.getppid() != parent:  # asked to stop, or orphaned
                break
    finally:
        for s in servers:
            s.close()


def _parse_headers(raw: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes],
                     to_eof: bool = False) -> bytes:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to us
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    return await reader.read() if to_eof else b""


class Arrivals:
    """The parent's view of what the partners received: message id -> {partner: first time}."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.by_message: dict[str, dict[str, float]] = {}
        self.repeats = 0
        self.without_id = 0

    def drain(self) -> None:
        while True:
            try:
                batch = self._events.get_nowait()
            except queue.Empty:
                return
            for name, mid, at, repeat in batch:
                if repeat:
                    self.repeats += 1
                elif mid is None:
                    self.without_id += 1
                else:
                    self.by_message.setdefault(mid, {}).setdefault(name, at)

    def complete(self, mid: str, names: tuple[str, ...]) -> bool:
        got = self.by_message.get(mid)
        return got is not None and all(n in got for n in names)


# ---------------------------------------------------------------------------------------------
# Load-generating client
# ---------------------------------------------------------------------------------------------


class HttpConn:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (0, 1):  # a kept-alive connection the server closed: reconnect once
            try:
                if self._w is None:
                    self._r, self._w = await asyncio.open_connection(self.host, self.port)
                assert self._r is not None
                self._w.write(data)
                status_head = await self._r.readuntil(b"\r\n\r\n")
                status_line, _, rest = status_head.partition(b"\r\n")
                rheaders = _parse_headers(rest)
                close = rheaders.get(b"connection", b"").lower() == b"close"
                rbody = await _read_body(self._r, rheaders, to_eof=close)
                if close:
                    self.close()
                return int(status_line.split()[1]), rbody
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        self._r = self._w = None


@dataclass
class Sent:
    index: int
    scheduled: float | None  # when it should have been sent (fixed-rate runs)
    sent: float = 0.0  # when the request was written
    answered: float = 0.0
    status: int = 0
    message_id: str | None = None
    error: str | None = None


async def submit(host: str, port: int, path: str, token: str, bodies: list[bytes],
                 keys: list[str], connections: int, rate: float | None = None,
                 cap_seconds: float | None = None) -> tuple[list[Sent], float]:
    """POST every body (closed loop, or open loop at `rate`/s); stop offering after cap_seconds.

    Returns what was sent (in order) and the monotonic start time.
    """
    import orjson

    results: list[Sent] = []
    next_index = 0
    t0 = time.monotonic()
    deadline = t0 + cap_seconds if cap_seconds else None

    async def worker() -> None:
        nonlocal next_index
        conn = HttpConn(host, port)
        try:
            while next_index < len(bodies):
                i = next_index
                next_index += 1
                scheduled = t0 + i / rate if rate else None
                if scheduled is not None and scheduled > time.monotonic():
                    await asyncio.sleep(scheduled - time.monotonic())
                if deadline and time.monotonic() > deadline:
                    return
                s = Sent(i, scheduled, sent=time.monotonic())
                results.append(s)
                try:
                    s.status, raw = await asyncio.wait_for(conn.request("POST", path, {
                        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Idempotency-Key": keys[i]}, bodies[i]), REQUEST_TIMEOUT)
                    s.answered = time.monotonic()
                    if s.status == 202:
                        s.message_id = str(orjson.loads(raw)["message_id"])
                    else:
                        s.error = f"HTTP {s.status}: {raw[:200].decode(errors='replace')}"
                except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                    conn.close()
                    s.answered = time.monotonic()
                    s.error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    results.sort(key=lambda s: s.index)
    return results, t0
