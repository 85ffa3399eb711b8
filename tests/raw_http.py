"""A raw HTTP/1.1 exchange that stops sending the body as soon as the server answers.

httpx writes a whole body before it reads the answer; a server that refuses early closes the
connection under it. These tests need to see that early answer, and how much was sent by then.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    body_bytes_sent: int  # of the request body, before the answer arrived
    seconds: float  # from the first byte sent to the answer

    def json(self) -> object:
        return orjson.loads(self.body)


def chunked(pieces: Iterable[bytes]) -> Iterable[bytes]:
    """Pieces in chunked transfer coding, then the last chunk."""
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def exchange(base_url: str, method: str, path: str, headers: dict[str, str],
             body: Iterable[bytes], timeout: float = 10.0) -> RawAnswer:
    """Send the head, then body pieces until the server answers; read the answer to its end."""
    where = urlsplit(base_url)
    head = f"{method} {path} HTTP/1.1\r\nHost: {where.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    started = time.monotonic()
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        sent = 0
        for piece in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: a real client stops sending here
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # it closed the connection after answering; the answer is still readable
            sent += len(piece)
        received = _read_answer(sock, started + timeout)
    seconds = time.monotonic() - started
    head_bytes, _, rest = received.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:])
    found = {k.strip().lower(): v.strip() for k, v in fields.items()}
    length = int(found.get("content-length", len(rest)))
    return RawAnswer(int(lines[0].split()[1]), found, rest[:length], sent, seconds)


def _read_answer(sock: socket.socket, deadline: float) -> bytes:
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError as exc:
            raise AssertionError(f"no complete answer in time; got {received[:200]!r}") from exc
        if not data:
            break
        received += data
        head, sep, rest = received.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                break
    if b"\r\n\r\n" not in received:
        raise AssertionError(f"no answer from the server; got {received[:200]!r}")
    return received
