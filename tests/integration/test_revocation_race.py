"""A revocation reaches status updates already queued: nothing leaves after it commits."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import text
from sqlmodel import select

from consent.model import ConsentKind
from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.store import aware
from hub.db.tables import ConsentVersion, LedgerEntry
from hub.partners import PartnerServer
from hub.service import start_workers, stop_workers
from tests.harness import RunningHub, notice, status, wait_for
from tests.integration.test_consent_flow import cj_consent
from tests.queues import depth

N = 1000
STATUS_TO_DA = "SELECT count(*) FROM delivery WHERE recipient = 'da' AND form = 'referral-status'"


def test_revoking_while_1000_status_updates_are_queued_stops_every_later_disclosure(
    hub: Hub, partners: dict[str, PartnerServer],
) -> None:
    """Revoke mid-stream: no ledger disclosure and no partner receipt is decided after the commit."""
    da = partners["da"]
    with RunningHub(hub, partners, workers=False) as api:
        early = start_workers(hub, ("ingest", "route", "deliver"))
        case = api.submit("sfpd", "diversion-notices", notice())
        wait_for("case delivered", lambda: api.settled(case, 2))
        stop_workers(early)
        provider = api.token("provider", {"status.write", "consent.write"})
        headers = {"Authorization": f"Bearer {provider}"}
        consent = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None)
        r = api.http.post("/fhir/Consent", json=consent, headers=headers)
        assert r.status_code == 201, r.text
        consent_id = r.json()["id"]

        local = threading.local()
        base = str(api.http.base_url)

        def post(i: int) -> None:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, timeout=30)
            resp = local.client.post("/v1/agencies/provider/referral-status",
                                     json=status(case), headers=headers)
            assert resp.status_code == 202, resp.text

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, range(N)))
        feeders = start_workers(hub, ("ingest", "route"))
        wait_for("1,000 status updates queued for delivery (DA and police each)",
                 lambda: depth(hub, "deliver") == 2 * N, timeout=120)
        stop_workers(feeders)

        deliverers = start_workers(hub, ("deliver",), per_step=2)
        wait_for("some status reached the DA", lambda: len(da.state.accepted) >= 50, timeout=60)
        params = {"resourceType": "Parameters", "parameter": [
            {"name": "method", "valueCode": "electronic"},
            {"name": "revokedBy", "valueString": "patient portal"}]}
        r = api.http.post(f"/fhir/Consent/{consent_id}/$revoke", json=params, headers=headers)
        committed = time.monotonic()
        assert r.status_code == 200, r.text
        with unit_of_work(hub.engine) as s:
            revoked = s.exec(select(ConsentVersion).where(
                ConsentVersion.consent_id == consent_id, ConsentVersion.version == 2)).one()
        assert revoked.revoked_at is not None
        revoked_at = aware(revoked.revoked_at)
        wait_for("every delivery settled",
                 lambda: _count(hub, STATUS_TO_DA + " AND status IN ('delivered', 'withheld')") == N
                 and depth(hub, "deliver") == 0, timeout=180)
        stop_workers(deliverers)

    with unit_of_work(hub.engine) as s:
        disclosed = s.exec(select(LedgerEntry).where(
            LedgerEntry.recipient == "da", LedgerEntry.decision == "disclosed",
            LedgerEntry.message_type == "referral-status")).all()
    after = [e for e in disclosed if aware(e.recorded_at) >= revoked_at]
    decided = {e.delivery_id: aware(e.recorded_at) for e in disclosed}
    assert not after, f"{len(after)} field(s) disclosed to the DA after the revocation committed"
    late = [x for x in da.state.accepted if x.at > committed]
    for receipt in late:  # in flight at the commit: decided, and recorded, before it
        assert decided[receipt.headers["X-Hub-Delivery-Id"]] < revoked_at
    delivered = _count(hub, STATUS_TO_DA + " AND status = 'delivered'")
    withheld = _count(hub, STATUS_TO_DA + " AND status = 'withheld'")
    assert delivered + withheld == N and withheld > 0 and delivered >= 50
    status_receipts = [x for x in da.state.accepted if x.document["type"] == "referral-status"]
    assert len({x.headers["X-Hub-Message-Id"] for x in status_receipts}) == delivered
    print(f"\n{N} queued; {delivered} reached the DA before revocation, {withheld} withheld "
          f"after; {len(late)} in flight at the commit, all decided before it")


def _count(hub: Hub, sql: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())
