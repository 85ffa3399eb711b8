"""A database outage mid-stream pauses the steps: nothing parked, lost or delivered twice."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hub import logs
from hub.bootstrap import Hub, bootstrap
from hub.broker import STEPS, delete_topology
from hub.ledger_chain import verify
from hub.partners import PartnerServer
from hub.settings import Settings
from tests.harness import RunningHub, hub_env, notice, site_file_for, wait_for
from tests.private_postgres import PrivatePostgres
from tests.queues import depth
from tests.services import Services

N = 500
STOP_AT = 100  # deliveries done when the database goes away: the rest are in flight
# Far beyond the retry delays' sum (1.4 s), so retries alone would park; and over before the
# paused workers' fourth probe (0.5 + 1 + 2 + 4 s), so they resume without a 15 s wait.
OUTAGE_SECONDS = 6.0
STALLED_SECONDS = 15.0  # no progress for this long after the restart ends the wait
PHI = ("Testperson", "Avery", "1988-03-14", "555-0199", "NM-T-1234", "Test Way")


class StepWorkers:
    """`hub worker` processes, as deployed, each logging to a file of its own."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self._env = env
        self.folder = folder
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, step: str) -> None:
        with open(self.folder / f"{step}-{len(self._procs)}.log", "wb") as log:
            self._procs.append(subprocess.Popen([sys.executable, "-m", "hub", "worker", step],
                                                env=self._env, stdout=log,
                                                stderr=subprocess.STDOUT))

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for f in sorted(self.folder.glob("*.log"))
                for line in f.read_text().splitlines()]

    def stop(self) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def outage_hub(private_pg: PrivatePostgres, services: Services,
               partners: dict[str, PartnerServer]) -> Iterator[Hub]:
    """The hub on the private PostgreSQL, with short retry delays and its own queue prefix."""
    logs.configure("WARNING")
    settings = Settings(database_url=private_pg.url, amqp_url=services.amqp_url,
                        broker_prefix=f"test-{uuid.uuid4().hex[:10]}",
                        retry_delays_ms=[200, 400, 800], push_timeout_seconds=2.0, prefetch=32)
    built = bootstrap(settings, endpoint_overrides={
        "da": f"{partners['da'].url}/lead/messages",
        "provider": f"{partners['provider'].url}/fhir",
    })
    yield built
    delete_topology(settings.amqp_url, built.topology)
    built.close()


@pytest.fixture
def workers(outage_hub: Hub, partners: dict[str, PartnerServer],
            tmp_path: Path) -> Iterator[StepWorkers]:
    started = StepWorkers(hub_env(outage_hub.settings, site_file_for(partners, tmp_path)),
                          tmp_path)
    yield started
    started.stop()


PROGRESS = {
    "ingested": "SELECT count(*) FROM message WHERE case_ref IS NOT NULL",
    "routed": "SELECT count(DISTINCT message_id) FROM delivery",
    "delivered": "SELECT count(*) FROM delivery WHERE status = 'delivered'",
}


def _progress(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {k: int(conn.execute(text(q)).scalar_one()) for k, q in PROGRESS.items()}


def _delivered(hub: Hub) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(text(PROGRESS["delivered"])).scalar_one())


def _parked(hub: Hub) -> dict[str, int]:
    return {step: depth(hub, step, parked=True) for step in STEPS}


def _submit_all(api: RunningHub) -> list[str]:
    """Post N notices from 4 threads, one connection each."""
    token, base = api.token("sfpd"), str(api.http.base_url)
    local = threading.local()

    def post(i: int) -> str:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=30)
        r = local.client.post("/v1/agencies/sfpd/diversion-notices", json=notice(),
                              headers={"Authorization": f"Bearer {token}",
                                       "Idempotency-Key": f"outage-{i}"})
        assert r.status_code == 202, r.text
        return str(r.json()["message_id"])

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(post, range(N)))


def _wait_until_settled(hub: Hub, partners: dict[str, PartnerServer]) -> None:
    """Until every message reached both partners, or nothing has moved for a while."""
    last, moved_at = -1, time.monotonic()
    while time.monotonic() - moved_at < STALLED_SECONDS:
        if sum(len(set(p.message_ids())) for p in partners.values()) == 2 * N:
            return
        now = sum(len(p.message_ids()) for p in partners.values()) + sum(_parked(hub).values())
        if now != last:
            last, moved_at = now, time.monotonic()
        time.sleep(0.25)


def test_database_outage_pauses_steps_and_parks_nothing(
    outage_hub: Hub, partners: dict[str, PartnerServer], private_pg: PrivatePostgres,
    workers: StepWorkers,
) -> None:
    """500 notices; the database stops mid-stream for 6 s; each partner gets every one, once."""
    hub = outage_hub
    with RunningHub(hub, partners, workers=False) as api:
        for step in ("route", "deliver", "deliver"):  # delivering is the slowest step
            workers.start(step)
        # every notice waits at ingest first, so each step has work in hand when the database goes
        ids = _submit_all(api)
        started = time.monotonic()
        workers.start("ingest")
        wait_for(f"{STOP_AT} deliveries", lambda: _delivered(hub) >= STOP_AT, timeout=60)
        at_stop = _progress(hub)
        private_pg.stop("fast")
        stopped_at = time.monotonic() - started
        time.sleep(OUTAGE_SECONDS)
        private_pg.start()
        outage = time.monotonic() - started - stopped_at
        _wait_until_settled(hub, partners)
        elapsed = time.monotonic() - started

    assert len(set(ids)) == N
    parked = _parked(hub)
    with hub.engine.connect() as conn:
        parked_rows = conn.execute(text(
            "SELECT count(*) FROM delivery WHERE status = 'parked'")).scalar_one()
    assert parked == dict.fromkeys(STEPS, 0) and parked_rows == 0, (
        f"parked in the queues: {parked}; delivery rows parked: {parked_rows}")
    for name, partner in partners.items():
        accepted = Counter(partner.message_ids())
        assert set(accepted) == set(ids), f"{name} is missing {len(set(ids) - set(accepted))}"
        assert max(accepted.values()) == 1, f"{name} accepted a message twice"
    assert _delivered(hub) == 2 * N
    verdict = verify(hub.engine, hub.chain, hub.signer.public_hex)
    assert verdict.ok, verdict.problem

    events = workers.events()
    paused = [e for e in events if e["event"] == "consumption paused"]
    resumed = [e for e in events if e["event"] == "consumption resumed"]
    assert paused and len(paused) == len(resumed), (len(paused), len(resumed))
    assert {e["error_kind"] for e in paused} == {"DatabaseUnavailable"}
    for line in map(json.dumps, events):
        assert not any(phi in line for phi in PHI), f"PHI in a worker log line: {line}"
    repeats = {name: sum(n - 1 for n in p.state.attempts.values() if n > 1)
               for name, p in partners.items()}
    print(f"\n{N} notices, {2 * N} deliveries in {elapsed:.1f}s after submission; database "
          f"stopped at {stopped_at:.1f}s ({at_stop}) for {outage:.1f}s; pauses: "
          f"{Counter(str(e['step']) for e in paused)}; repeats answered by key: {repeats}")
