"""Workers killed with SIGKILL mid-stream lose nothing and deliver nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hub.bootstrap import Hub
from hub.ledger_chain import verify
from hub.partners import PartnerServer
from tests.harness import RunningHub, hub_env, notice, site_file_for, wait_for

N = 1000
KILL_AT = 150

PROGRESS = {
    "ingest": "SELECT count(*) FROM message WHERE case_ref IS NOT NULL",
    "route": "SELECT count(DISTINCT message_id) FROM delivery",
    "deliver": "SELECT count(*) FROM delivery WHERE status = 'delivered'",
}


class Workers:
    def __init__(self, hub: Hub, site_file: Path, logs: Path) -> None:
        self._env = hub_env(hub.settings, site_file)
        self._logs = logs
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}

    def start(self, step: str) -> None:
        log = open(self._logs / f"{step}-{len(self.procs.get(step, []))}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "hub", "worker", step], env=self._env,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.setdefault(step, []).append(proc)

    def kill_one(self, step: str) -> None:
        victim = self.procs[step][0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)

    def stop_all(self) -> None:
        for procs in self.procs.values():
            for p in procs:
                if p.poll() is None:
                    p.terminate()
        for procs in self.procs.values():
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


@pytest.fixture
def workers(hub: Hub, partners: dict[str, PartnerServer], tmp_path: Path) -> Iterator[Workers]:
    w = Workers(hub, site_file_for(partners, tmp_path), tmp_path)
    yield w
    w.stop_all()


def _progress(hub: Hub, step: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(text(PROGRESS[step])).scalar_one())


def test_sigkill_in_every_step_loses_nothing_and_delivers_nothing_twice(
    hub: Hub, partners: dict[str, PartnerServer], workers: Workers, tmp_path: Path
) -> None:
    """1,000 notices; one worker of each step is SIGKILLed mid-stream; each partner gets all, once."""
    for step in PROGRESS:
        workers.start(step)
        workers.start(step)
    with RunningHub(hub, partners, workers=False) as api:
        token = api.token("sfpd")
        base = str(api.http.base_url)

        local = threading.local()

        def post(i: int) -> str:
            if not hasattr(local, "client"):  # one connection per posting thread
                local.client = httpx.Client(base_url=base, timeout=30)
            r = local.client.post("/v1/agencies/sfpd/diversion-notices", json=notice(),
                              headers={"Authorization": f"Bearer {token}",
                                       "Idempotency-Key": f"crash-{i}"})
            assert r.status_code == 202, r.text
            return str(r.json()["message_id"])

        started = time.monotonic()
        killed_at: dict[str, int] = {}
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, i) for i in range(N)]
            while len(killed_at) < len(PROGRESS):
                for step in PROGRESS:
                    done = _progress(hub, step)
                    if step not in killed_at and done >= KILL_AT:
                        workers.kill_one(step)
                        workers.start(step)
                        killed_at[step] = done
                if time.monotonic() - started > 120:
                    break
                time.sleep(0.02)
            ids = [f.result() for f in futures]

        wait_for("every delivery settled",
                 lambda: _progress(hub, "deliver") == 2 * N, timeout=240)
        elapsed = time.monotonic() - started

    assert set(killed_at) == set(PROGRESS), f"not every step saw a kill: {killed_at}"
    assert all(n < N * (2 if s == "deliver" else 1) for s, n in killed_at.items()), (
        f"a kill came after its step had finished: {killed_at}")
    assert len(set(ids)) == N
    for name in ("provider", "da"):
        received = Counter(partners[name].message_ids())
        assert set(received) == set(ids), f"{name} is missing {len(set(ids) - set(received))}"
        assert max(received.values()) == 1, f"{name} accepted a message twice"
    logged = [line for f in sorted(tmp_path.glob("*.log")) for line in f.read_text().splitlines()]
    assert any('"event": "pushed"' in line for line in logged)
    for line in logged:
        assert json.loads(line)["event"], line  # every line is a JSON event
        for phi in ("Testperson", "Avery", "1988-03-14", "555-0199", "NM-T-1234", "Test Way"):
            assert phi not in line, f"PHI in a worker log line: {line}"
    verdict = verify(hub.engine, hub.chain, hub.signer.public_hex)
    assert verdict.ok, verdict.problem  # concurrent appenders from six processes kept one chain
    assert verdict.entries >= 2 * N * 10
    repeats = {name: sum(n - 1 for n in p.state.attempts.values() if n > 1)
               for name, p in partners.items()}
    print(f"\n{N} notices, {2 * N} deliveries in {elapsed:.1f}s with kills at {killed_at}; "
          f"repeated sends answered by Idempotency-Key: {repeats}")
