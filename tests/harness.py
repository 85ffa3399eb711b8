"""A hub running for a test: API on a thread, workers on threads, clients with tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml

from hub import PROJECT_ROOT
from hub.api.server import ApiThread
from hub.bootstrap import Hub
from hub.partners import PartnerServer
from hub.service import WorkerThread, start_workers, stop_workers
from hub.settings import Settings

EXAMPLES = PROJECT_ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASE_PLACEHOLDER = "CASE_ID"

AGENCY_SCOPES = {
    "sfpd": {"diversion.write", "inbox.read"},
    "outreach": {"diversion.write", "inbox.read"},
    "da": {"hold.write", "inbox.read"},
    "provider": {"status.write", "inbox.read"},
}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(0.05)


def notice(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    body: dict[str, Any] = {
        "pathway": "arrest-diversion",
        "referred_at": now.isoformat(),
        "person": {"given_name": "Avery", "family_name": "Testperson",
                   "date_of_birth": "1988-03-14", "state_id": "NM-T-1234"},
        "contact": {"phone": "555-0199", "address": "1 Test Way, Santa Fe"},
        "incident": {"report_number": f"SFPD-{uuid.uuid4().hex[:8]}",
                     "occurred_at": (now - timedelta(hours=1)).isoformat(),
                     "officer": "Badge 4242", "location": "Plaza",
                     "charges": [{"statute": "30-31-23", "description": "possession"}]},
        "referral_reason": "possession under 3 g",
    }
    body.update(overrides)
    return body


def example(name: str, case_ref: str | None = None) -> bytes:
    """A document from examples/, its CASE_ID placeholder replaced by `case_ref` when given."""
    raw = (EXAMPLES / name).read_bytes()
    return raw.replace(CASE_PLACEHOLDER.encode(), case_ref.encode()) if case_ref else raw


def hold(case_ref: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_ref": case_ref, "status": "held",
        "decided_at": datetime.now(timezone.utc).isoformat(),
        "hold_deadline": (datetime.now(timezone.utc) + timedelta(days=14)).date().isoformat(),
        "conditions": ["intake within 14 days"], "prosecutor": "ADA Test",
    }
    body.update(overrides)
    return body


def status(case_ref: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"case_ref": case_ref, "status": "engaged",
                            "occurred_at": datetime.now(timezone.utc).isoformat(),
                            "plan_summary": "outpatient MOUD"}
    body.update(overrides)
    return body


class RunningHub:
    def __init__(self, hub: Hub, partners: dict[str, PartnerServer], workers: bool = True) -> None:
        self.hub = hub
        self.partners = partners
        self._with_workers = workers
        self._workers: list[WorkerThread] = []
        self._api = ApiThread(hub)
        self._tokens: dict[str, str] = {}
        self.http: httpx.Client

    def __enter__(self) -> "RunningHub":
        self._api.start()
        if self._with_workers:
            self._workers = start_workers(self.hub)
        self.http = httpx.Client(base_url=self._api.url, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        stop_workers(self._workers)
        self._api.stop()

    def client(self, agency: str, scopes: set[str] | None = None) -> tuple[str, str]:
        return self.hub.clients.register(self.hub.site.site, agency,
                                         scopes or AGENCY_SCOPES[agency])

    def token(self, agency: str, scopes: set[str] | None = None) -> str:
        if scopes is None and agency in self._tokens:
            return self._tokens[agency]
        client_id, secret = self.client(agency, scopes)
        r = self.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, secret))
        assert r.status_code == 200, r.text
        token = str(r.json()["access_token"])
        if scopes is None:
            self._tokens[agency] = token
        return token

    def post(self, agency: str, kind: str, body: Any, *, key: str | None = None,
             token: str | None = None, as_agency: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token(as_agency or agency)}"}
        if key:
            headers["Idempotency-Key"] = key
        return self.http.post(f"/v1/agencies/{agency}/{kind}", json=body, headers=headers)

    def submit(self, agency: str, kind: str, body: Any, key: str | None = None) -> str:
        r = self.post(agency, kind, body, key=key)
        assert r.status_code == 202, r.text
        return str(r.json()["message_id"])

    def post_niem(self, body: bytes, query: str = "", agency: str = "sfpd") -> httpx.Response:
        """A NIEM XML diversion notice, as a police records system sends it."""
        return self.http.post(
            f"/v1/agencies/{agency}/diversion-notices{query}", content=body,
            headers={"Content-Type": "application/xml",
                     "Authorization": f"Bearer {self.token(agency)}"})

    def post_task(self, body: bytes, content_type: str,
                  token: str | None = None) -> httpx.Response:
        """A FHIR Task update, as a provider's EHR sends it."""
        return self.http.post("/fhir/Task", content=body, headers={
            "Content-Type": content_type,
            "Authorization": f"Bearer {token or self.token('provider')}"})

    def settled(self, message_id: str, expected: int) -> bool:
        ds = self.hub.store.deliveries_of(message_id)
        return len(ds) == expected and all(d.status != "pending" for d in ds)


def hub_env(settings: Settings, site_file: Path | None = None) -> dict[str, str]:
    """Environment for a `hub` subprocess that shares this test's database and queues."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_AMQP_URL": settings.amqp_url,
        "HUB_BROKER_PREFIX": settings.broker_prefix,
        "HUB_RETRY_DELAYS_MS": json.dumps(settings.retry_delays_ms),
        "HUB_PUSH_TIMEOUT_SECONDS": str(settings.push_timeout_seconds),
        "HUB_PREFETCH": str(settings.prefetch),
        "HUB_LOG_LEVEL": "INFO",
    })
    if site_file:
        env["HUB_SITE_FILE"] = str(site_file)
    return env


def hub_cli(settings: Settings, *args: str, site_file: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], env=hub_env(settings, site_file),
                          capture_output=True, text=True, timeout=timeout)


def site_file_for(partners: dict[str, PartnerServer], folder: Path) -> Path:
    """The demo site with its push endpoints pointed at the test partners."""
    data = yaml.safe_load((PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml").read_text())
    data["agencies"]["da"]["delivery"] = {"push": f"{partners['da'].url}/lead/messages"}
    data["agencies"]["provider"]["delivery"] = {"push": f"{partners['provider'].url}/fhir"}
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
