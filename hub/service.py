"""Running workers: threads in one process (`hub serve`), restarted if their connection drops."""

from __future__ import annotations

import threading
import time

import structlog

from hub.bootstrap import Hub
from hub.broker import STEPS
from hub.errors import HubError
from hub.steps.runner import StepRunner

log = structlog.get_logger("hub.service")


class WorkerThread(threading.Thread):
    """One step's consumer; reconnects with a growing pause when RabbitMQ goes away."""

    def __init__(self, hub: Hub, step: str) -> None:
        super().__init__(name=f"worker-{step}", daemon=True)
        self._hub = hub
        self._step = step
        self._stopping = threading.Event()
        self._runner: StepRunner | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        pause = 0.5
        while not self._stopping.is_set():
            try:
                self._runner = self._hub.runner(self._step)
                self.ready.set()
                self._runner.run()
                pause = 0.5
            except HubError as exc:
                log.warning("worker lost its connection", step=self._step,
                            error_kind=type(exc).__name__, delay_ms=int(pause * 1000))
                self._stopping.wait(pause)
                pause = min(pause * 2, 30)

    def stop(self) -> None:
        self._stopping.set()
        if self._runner:
            self._runner.stop()


class CheckpointThread(threading.Thread):
    """Signs a ledger checkpoint at the configured interval while the hub serves."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(name="checkpoints", daemon=True)
        self._hub = hub
        self._stopping = threading.Event()

    def run(self) -> None:
        from hub.ledger_chain import make_checkpoint

        while not self._stopping.wait(self._hub.settings.checkpoint_interval_seconds):
            try:
                make_checkpoint(self._hub.engine, self._hub.signer, "interval")
            except HubError as exc:
                log.warning("checkpoint failed", error_kind=type(exc).__name__)

    def stop(self) -> None:
        self._stopping.set()


def start_workers(hub: Hub, steps: tuple[str, ...] = STEPS, per_step: int = 1) -> list[WorkerThread]:
    threads = [WorkerThread(hub, step) for step in steps for _ in range(per_step)]
    for t in threads:
        t.start()
    for t in threads:
        t.ready.wait(10)
    return threads


def stop_workers(threads: list[WorkerThread]) -> None:
    for t in threads:
        t.stop()
    deadline = time.monotonic() + 5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
