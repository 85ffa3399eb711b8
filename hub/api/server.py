"""Serving the API with uvicorn, in the foreground (`hub serve`) or on a thread (demo, tests)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from hub.api.app import create_app
from hub.bootstrap import Hub


class ApiThread:
    """The API on an ephemeral (or given) port, in a background thread."""

    def __init__(self, hub: Hub, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        config = uvicorn.Config(create_app(hub), log_config=None, access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="api")

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ApiThread":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("API did not start within 10 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._sock.close()


def serve_foreground(hub: Hub) -> None:
    uvicorn.run(create_app(hub), host=hub.settings.api_host, port=hub.settings.api_port,
                log_config=None, access_log=False)
