"""`hub demo`: a diversion, a hold and a status update through the real hub, as a timeline.

It uses the configured RabbitMQ (under its own queue prefix, removed afterwards) and
database, stands up receivers for the DA's case system and the provider's EHR, and exits
non-zero if anything expected did not arrive.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import httpx

from consent.fhir_consent import consent_resource
from consent.model import FINAL_DISPOSITION, ConsentKind
from hub.api.server import ApiThread
from hub.bootstrap import Hub, bootstrap
from hub.broker import delete_topology
from hub.partners import PartnerServer
from hub.service import start_workers, stop_workers
from hub.settings import Settings

SCOPES = {
    "sfpd": {"diversion.write", "inbox.read"},
    "da": {"hold.write", "inbox.read"},
    "provider": {"status.write", "inbox.read", "consent.write"},
}


def _wait(what: str, check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f"  !! timed out waiting for: {what}")
    return False


def _token(api: httpx.Client, hub: Hub, agency: str) -> str:
    client_id, secret = hub.clients.register(hub.site.site, agency, SCOPES[agency])
    r = api.post("/oauth/token", data={"grant_type": "client_credentials"},
                 auth=(client_id, secret))
    r.raise_for_status()
    return str(r.json()["access_token"])


def _notice() -> dict[str, object]:
    now = datetime.now(timezone.utc)
    return {
        "pathway": "arrest-diversion",
        "referred_at": now.isoformat(),
        "person": {"given_name": "Demo", "family_name": "Participant",
                   "date_of_birth": "1990-01-01", "gender": "unknown"},
        "contact": {"phone": "555-0100"},
        "incident": {"report_number": f"SFPD-DEMO-{uuid.uuid4().hex[:6]}",
                     "occurred_at": (now - timedelta(hours=1)).isoformat(),
                     "officer": "Badge 0000",
                     "charges": [{"statute": "30-31-23", "description": "possession (demo)"}]},
        "referral_reason": "low-level possession; officer diverted to LEAD",
    }


def run_demo(settings: Settings) -> int:
    demo_settings = settings.model_copy(
        update={"broker_prefix": f"{settings.broker_prefix}-demo-{uuid.uuid4().hex[:8]}"})
    da, ehr = PartnerServer("da").start(), PartnerServer("provider").start()
    hub = bootstrap(demo_settings, endpoint_overrides={
        "da": f"{da.url}/lead/messages", "provider": f"{ehr.url}/fhir"})
    workers = start_workers(hub)
    api_thread = ApiThread(hub).start()
    ok = True
    try:
        api = httpx.Client(base_url=api_thread.url, timeout=10)
        tokens = {agency: _token(api, hub, agency) for agency in SCOPES}

        def post(agency: str, kind: str, body: dict[str, object]) -> str:
            r = api.post(f"/v1/agencies/{agency}/{kind}", json=body,
                         headers={"Authorization": f"Bearer {tokens[agency]}",
                                  "Idempotency-Key": uuid.uuid4().hex})
            r.raise_for_status()
            return str(r.json()["message_id"])

        def settled(message_id: str, n: int) -> bool:
            ds = hub.store.deliveries_of(message_id)
            return len(ds) == n and all(d.status != "pending" for d in ds)

        print(f"LEAD Hub demo: site {hub.site.site!r}, queues {demo_settings.broker_prefix}.*\n")
        notice_id = post("sfpd", "diversion-notices", _notice())
        print(f"1. SFPD sent an arrest diversion notice -> message {notice_id}")
        ok &= _wait("FHIR referral at the provider's EHR", lambda: len(ehr.state.accepted) >= 1)
        ok &= _wait("diversion notice at the DA", lambda: len(da.state.accepted) >= 1)
        ok &= _wait("notice deliveries settled", lambda: settled(notice_id, 2))

        hold = {"case_ref": notice_id, "status": "held",
                "decided_at": datetime.now(timezone.utc).isoformat(),
                "hold_deadline": (date.today() + timedelta(days=14)).isoformat(),
                "conditions": ["intake completed within 14 days"],
                "prosecutor": "ADA Demo"}
        hold_id = post("da", "charge-holds", hold)
        print(f"2. The DA held the charge -> message {hold_id}")
        ok &= _wait("hold settled", lambda: settled(hold_id, 2))
        ok &= _wait("hold at the provider", lambda: len(ehr.state.accepted) >= 2)
        r = api.get("/v1/agencies/sfpd/inbox", headers={"Authorization": f"Bearer {tokens['sfpd']}"})
        sfpd_items = [i for i in r.json()["items"] if i["message_id"] == hold_id]
        ok &= bool(sfpd_items) or _wait("hold in SFPD's inbox", lambda: False, 0)
        for item in sfpd_items:
            api.post(f"/v1/agencies/sfpd/inbox/{item['id']}/ack",
                     headers={"Authorization": f"Bearer {tokens['sfpd']}"})

        def report(code: str, step: str) -> str:
            body = {"case_ref": notice_id, "status": code,
                    "occurred_at": datetime.now(timezone.utc).isoformat(),
                    "plan_summary": "outpatient MOUD and housing navigation"}
            message_id = post("provider", "referral-status", body)
            print(f"{step}. The provider reported '{code}' -> message {message_id}")
            return message_id

        def reached_da(message_id: str) -> bool:
            return any(r.headers.get("X-Hub-Message-Id") == message_id for r in da.state.accepted)

        accepted_id = report("accepted", "3")
        ok &= _wait("status settled", lambda: settled(accepted_id, 2))
        if reached_da(accepted_id):
            print("  !! the DA received Part 2 status without a consent")
            ok = False

        now = datetime.now(timezone.utc)
        consent = consent_resource(
            case_ref=notice_id, patient_name="Demo Participant", discloser="provider",
            recipients=["da"], kind=ConsentKind.CRIMINAL_JUSTICE,
            purposes=["LEAD-CJ-MONITORING"], classes=["referral", "engagement"],
            signed_at=now - timedelta(minutes=1), valid_until=now + timedelta(days=180),
            revocable_after=FINAL_DISPOSITION)
        fhir_headers = {"Authorization": f"Bearer {tokens['provider']}"}
        r = api.post("/fhir/Consent", json=consent, headers=fhir_headers)
        ok &= r.status_code == 201
        consent_id = r.json().get("id", "?")
        print(f"4. The provider registered the participant's 42 CFR 2.35 consent -> "
              f"Consent/{consent_id} (DA, monitoring only, revocable after final disposition)")

        engaged_id = report("engaged", "5")
        ok &= _wait("status at the DA", lambda: reached_da(engaged_id))
        ok &= _wait("status settled", lambda: settled(engaged_id, 2))

        revoke = {"resourceType": "Parameters", "parameter": [
            {"name": "method", "valueCode": "written"},
            {"name": "revokedBy", "valueString": "the participant, on paper"}]}
        r = api.post(f"/fhir/Consent/{consent_id}/$revoke", json=revoke, headers=fhir_headers)
        print(f"6. The participant asked to revoke: HTTP {r.status_code}, "
              f"{r.json()['issue'][0]['diagnostics'] if r.status_code == 409 else 'revoked'}")
        ok &= r.status_code == 409
        disposed_id = post("da", "charge-holds", {
            "case_ref": notice_id, "status": "final-disposition",
            "decided_at": datetime.now(timezone.utc).isoformat()})
        print(f"7. The DA reported the final disposition -> message {disposed_id}")
        ok &= _wait("disposition settled", lambda: settled(disposed_id, 2))
        r = api.post(f"/fhir/Consent/{consent_id}/$revoke", json=revoke, headers=fhir_headers)
        print(f"8. Revocation again: HTTP {r.status_code} -> Consent/{consent_id} version "
              f"{r.json().get('meta', {}).get('versionId')}, status {r.json().get('status')}")
        ok &= r.status_code == 200

        exited_id = report("exited", "9")
        ok &= _wait("status settled", lambda: settled(exited_id, 2))
        if reached_da(exited_id):
            print("  !! the DA received status after the consent was revoked")
            ok = False
        status_ids = [(accepted_id, "status 'accepted' (no consent yet)"),
                      (engaged_id, "status 'engaged' (under the consent)"),
                      (exited_id, "status 'exited' (after revocation)")]

        print("\nTimeline (from the ledger):")
        for message_id, label in [(notice_id, "diversion notice"), (hold_id, "charge hold"),
                                  *status_ids]:
            _print_timeline(hub, message_id, label)
        print("\nPartners received: provider EHR", len(ehr.state.accepted), "FHIR Bundle(s);",
              "DA", len(da.state.accepted), "message(s); SFPD pulled", len(sfpd_items),
              "from its inbox")
        print("\nRESULT:", "everything expected arrived, nothing else left" if ok
              else "SOMETHING EXPECTED DID NOT HAPPEN")
        return 0 if ok else 1
    finally:
        api_thread.stop()
        stop_workers(workers)
        delete_topology(demo_settings.amqp_url, hub.topology)
        hub.close()
        da.stop()
        ehr.stop()


def _print_timeline(hub: Hub, message_id: str, label: str) -> None:
    entries = hub.ledger.for_message(message_id)
    by_delivery: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for e in entries:
        by_delivery[e.delivery_id].append(e)
    deliveries = {d.id: d for d in hub.store.deliveries_of(message_id)}
    print(f"  {label} {message_id}:")
    for did, rows in by_delivery.items():
        d = deliveries[did]
        sent = [r for r in rows if r.decision == "disclosed"]
        held = [r for r in rows if r.decision == "withheld"]
        when = rows[0].recorded_at.strftime("%H:%M:%S.%f")[:-3]
        name = hub.site.agencies[d.recipient].name
        print(f"    {when} -> {name} [{d.form}, purpose {d.purpose}]: {d.status.upper()}, "
              f"{len(sent)} field(s) sent, {len(held)} withheld")
        if sent:
            bases = sorted({r.legal_basis for r in sent})
            print(f"        sent {', '.join(r.field_path for r in sent)} under {'; '.join(bases)}")
        reasons = sorted({r.reason for r in held})
        for reason in reasons:
            paths = [r.field_path for r in held if r.reason == reason]
            print(f"        withheld {', '.join(paths)}: {reason}")
