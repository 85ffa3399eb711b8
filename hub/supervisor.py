"""`hub serve`'s worker processes: each step in processes of its own, restarted if one dies.

One process per step (or more) takes the steps off the API's interpreter lock, so the API,
ingest, route and deliver use the machine's cores. A child that exits while the hub serves
is started again after a growing pause; on shutdown each is asked to stop (SIGINT, as a
Ctrl-C in the terminal gives the whole process group) and killed if it does not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("hub.supervisor")


@dataclass
class _Child:
    step: str
    process: subprocess.Popen[bytes]
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)


class WorkerProcesses:
    def __init__(self, steps: tuple[str, ...], per_step: int) -> None:
        self._steps = steps
        self._per_step = per_step
        self._children: list[_Child] = []
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    @staticmethod
    def _spawn(step: str) -> subprocess.Popen[bytes]:
        # the same interpreter and environment (HUB_* settings, .env in the same folder)
        return subprocess.Popen([sys.executable, "-m", "hub", "worker", step], env=os.environ)

    def start(self) -> WorkerProcesses:
        for step in self._steps:
            for _ in range(self._per_step):
                self._children.append(_Child(step, self._spawn(step)))
        self._watch.start()
        return self

    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children]

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for child in self._children:
                code = child.process.poll()
                if code is None or self._stopping.is_set():
                    continue
                # a worker that keeps dying at once is paused longer between starts
                lived = time.monotonic() - child.started
                child.restarts = 0 if lived > 60 else child.restarts + 1
                pause = min(2.0 ** child.restarts, 30.0)
                log.warning("worker process exited; starting it again", step=child.step,
                            status=code, delay_ms=int(pause * 1000))
                if self._stopping.wait(pause):
                    return
                child.process, child.started = self._spawn(child.step), time.monotonic()

    def stop(self, grace: float = 10.0) -> None:
        self._stopping.set()
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        for child in self._children:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
