"""Consents registered over FHIR decide, at egress, what provider status reaches the justice system."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from consent.fhir_consent import REVOCATION_STATEMENT, consent_resource
from consent.model import ConsentKind
from tests.harness import FIXTURES, RunningHub, hold, notice, status, wait_for

NOW = datetime.now(timezone.utc)


def cj_consent(case: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        case_ref=case, patient_name="Avery Testperson", discloser="provider",
        recipients=["da"], kind=ConsentKind.CRIMINAL_JUSTICE, purposes=["LEAD-CJ-MONITORING"],
        classes=["referral", "engagement"], signed_at=NOW - timedelta(minutes=5),
        valid_until=NOW + timedelta(days=90), revocable_after="final-disposition")
    args.update(overrides)
    return consent_resource(**args)


def _fhir(running: RunningHub, method: str, path: str, body: Any = None,
          agency: str = "provider") -> Any:
    token = running.token(agency, {"consent.write", "status.write", "inbox.read"}
                          if agency == "provider" else None)
    return running.http.request(method, path, json=body,
                                headers={"Authorization": f"Bearer {token}"})


def _case(running: RunningHub) -> str:
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("notice delivered", lambda: running.settled(case, 2))
    return case


def test_status_reaches_the_da_with_only_permitted_fields_under_a_2_35_consent(
    running: RunningHub,
) -> None:
    """With a §2.35 consent naming the DA, status goes with monitoring fields, the notice and scope."""
    case = _case(running)
    r = _fhir(running, "POST", "/fhir/Consent", cj_consent(case))
    assert r.status_code == 201, r.text
    consent = r.json()
    assert consent["meta"]["versionId"] == "1"
    message_id = running.submit("provider", "referral-status", status(
        case, diagnoses=["F11.20", "F41.1"], counseling_note="discussed relapse triggers"))
    wait_for("status settled", lambda: running.settled(message_id, 2))

    da = [x for x in running.partners["da"].state.accepted
          if x.headers["X-Hub-Message-Id"] == message_id]
    assert len(da) == 1
    doc = da[0].document
    assert set(doc["body"]) == {"case_ref", "status", "occurred_at"}
    # nothing tells the DA what it did not get: no list, count or placeholder (R5, R6)
    sent = json.dumps(doc).lower()
    assert "withheld" not in sent
    for hint in ("plan_summary", "diagnos", "counsel", "f11.20", "relapse"):
        assert hint not in sent, hint
    assert doc["part2"]["notice"].startswith("42 CFR part 2 prohibits unauthorized use")
    ref = f"Consent/{consent['id']}/_history/1"
    assert doc["part2"]["consents"][0]["reference"] == ref
    assert "provider may disclose engagement, referral to da" in doc["part2"]["consents"][0]["scope"]
    assert "NORDSCLCD" in doc["part2"]["security_labels"]
    assert "criminal charges" in doc["part2"]["use_restriction"]
    rows = running.hub.ledger.for_message(message_id)
    to_da = {r.field_path: r for r in rows if r.recipient == "da"}
    assert to_da["status"].decision == "disclosed" and to_da["status"].legal_basis == ref
    assert to_da["plan_summary"].decision == "withheld"
    assert to_da["diagnoses[1]"].decision == "withheld"
    assert to_da["counseling_note"].decision == "withheld"  # the ledger keeps what was held back
    # police are not named in the consent: still withheld
    sfpd = {d.recipient: d.status for d in running.hub.store.deliveries_of(message_id)}
    assert sfpd["sfpd"] == "withheld"


def test_revocation_stops_the_next_status_and_history_is_kept(running: RunningHub) -> None:
    """A general consent is revoked: the next status is withheld; every version stays readable."""
    case = _case(running)
    general = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None)
    consent_id = _fhir(running, "POST", "/fhir/Consent", general).json()["id"]
    first = running.submit("provider", "referral-status", status(case))
    wait_for("first settled", lambda: running.settled(first, 2))
    assert first in running.partners["da"].message_ids()

    params = {"resourceType": "Parameters", "parameter": [
        {"name": "method", "valueCode": "written"},
        {"name": "revokedBy", "valueString": "the patient, at the clinic"}]}
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", params)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "inactive" and r.json()["meta"]["versionId"] == "2"

    second = running.submit("provider", "referral-status", status(case, status="exited"))
    wait_for("second settled", lambda: running.settled(second, 2))
    assert second not in running.partners["da"].message_ids()
    reasons = {r.reason for r in running.hub.ledger.for_message(second) if r.recipient == "da"}
    assert any("revoked" in reason for reason in reasons)

    history = _fhir(running, "GET", f"/fhir/Consent/{consent_id}/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert _fhir(running, "GET", f"/fhir/Consent/{consent_id}/_history/1").json()["status"] == \
        "active"


def test_2_35_consent_cannot_be_revoked_before_final_disposition_then_can(
    running: RunningHub,
) -> None:
    """Revocation before the DA reports final disposition is 409; after it, it succeeds."""
    case = _case(running)
    consent_id = _fhir(running, "POST", "/fhir/Consent", cj_consent(case)).json()["id"]
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "method", "valueCode": "electronic"},
        {"name": "revokedBy", "valueString": "patient portal"}]}
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", params)
    assert r.status_code == 409
    assert "final disposition" in r.json()["issue"][0]["diagnostics"]
    done = running.submit("da", "charge-holds", hold(case, status="final-disposition"))
    wait_for("disposition settled", lambda: running.settled(done, 2))
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", params)
    assert r.status_code == 200, r.text


def test_consent_missing_required_elements_is_refused_naming_each(running: RunningHub) -> None:
    """A consent without patient name, signature, revocation statement or purpose is 422, all named."""
    case = _case(running)
    bad = cj_consent(case)
    del bad["patient"]["display"], bad["sourceAttachment"], bad["extension"]
    bad["provision"]["purpose"] = []
    r = _fhir(running, "POST", "/fhir/Consent", bad)
    assert r.status_code == 422
    where = {i["expression"][0] for i in r.json()["issue"]}
    assert {"Consent.patient.display", "Consent.sourceAttachment",
            "Consent.provision.purpose"} <= where
    assert any("revocation-statement" in w for w in where)


def test_barred_combinations_are_refused(running: RunningHub) -> None:
    """Counselling notes with other classes, or proceedings with other purposes, are refused."""
    case = _case(running)
    notes = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None,
                       recipients=["provider"], classes=["counseling-notes", "engagement"])
    r = _fhir(running, "POST", "/fhir/Consent", notes)
    assert r.status_code == 422 and "§2.31(b)" in r.text
    proceedings = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None,
                             purposes=["LEAD-PROCEEDINGS", "LEAD-CJ-MONITORING"])
    r = _fhir(running, "POST", "/fhir/Consent", proceedings)
    assert r.status_code == 422 and "§2.31(d)" in r.text


def test_police_and_da_cannot_read_or_register_consents(running: RunningHub) -> None:
    """Justice agencies never query the registry (R6)."""
    case = _case(running)
    consent_id = _fhir(running, "POST", "/fhir/Consent", cj_consent(case)).json()["id"]
    for agency in ("da", "sfpd"):
        token = running.token(agency, {"consent.write"})
        r = running.http.get(f"/fhir/Consent/{consent_id}",
                             headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"


def test_court_order_authorises_only_what_it_names(running: RunningHub) -> None:
    """A court order entered by compliance lets status reach police; a subpoena path does not exist."""
    case = _case(running)
    token = running.token("compliance", {"court-order.write"})
    order = {"case_ref": case, "court": "First Judicial District Court", "docket": "D-101-CV-1",
             "issued_at": (NOW - timedelta(minutes=1)).isoformat(),
             "valid_until": (NOW + timedelta(days=30)).isoformat(), "disclosers": ["provider"],
             "recipients": ["sfpd"], "purposes": ["LEAD-CJ-MONITORING"], "classes": ["engagement"],
             "order_document_url": "https://court.example/orders/1.pdf",
             "entered_by": "Compliance Officer Test"}
    r = running.http.post("/v1/court-orders", json=order,
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("settled", lambda: running.settled(message_id, 2))
    deliveries = {d.recipient: d.status for d in running.hub.store.deliveries_of(message_id)}
    # case_ref is 'referral' class, which the order does not name: an essential field denied
    assert deliveries == {"sfpd": "withheld", "da": "withheld"}
    provider_token = running.token("provider", {"court-order.write"})
    r = running.http.post("/v1/court-orders", json=order,
                          headers={"Authorization": f"Bearer {provider_token}"})
    assert r.status_code == 403


def _revoke(running: RunningHub, consent_id: str) -> None:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "method", "valueCode": "written"},
        {"name": "revokedBy", "valueString": "the patient"}]}
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", params)
    assert r.status_code == 200, r.text


def test_revocation_reaches_deliveries_that_are_retrying_and_parked(running: RunningHub) -> None:
    """A status retrying against a down DA, and one parked, are withheld once the consent is revoked."""
    from tests.harness import hub_cli
    from tests.queues import depth

    case = _case(running)
    general = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None)
    consent_id = _fhir(running, "POST", "/fhir/Consent", general).json()["id"]
    da = running.partners["da"]
    da.state.fail_with = 503
    parked = running.submit("provider", "referral-status", status(case))

    def da_status(message_id: str) -> str:
        return next((d.status for d in running.hub.store.deliveries_of(message_id)
                     if d.recipient == "da"), "not yet routed")

    wait_for("first status parked", lambda: da_status(parked) == "parked", timeout=30)
    retrying = running.submit("provider", "referral-status", status(case, status="exited"))
    wait_for("second status failing", lambda: any(
        d.recipient == "da" and d.attempts >= 1 and d.last_error
        for d in running.hub.store.deliveries_of(retrying)))
    _revoke(running, consent_id)
    da.state.fail_with = None
    wait_for("retrying one decided again", lambda: da_status(retrying) == "withheld", timeout=30)
    replay = hub_cli(running.hub.settings, "dlq", "replay", "--message", parked)
    assert replay.returncode == 0 and "replayed 1" in replay.stdout, replay.stderr
    wait_for("replayed one decided again", lambda: da_status(parked) == "withheld")
    assert depth(running.hub, "deliver", parked=True) == 0
    assert da.message_ids() == [case]  # only the diversion notice ever reached the DA
    last = running.hub.ledger.for_message(parked)
    assert any("revoked" in r.reason for r in last if r.recipient == "da")


def test_a_police_referral_is_not_labelled_as_part2(running: RunningHub) -> None:
    """The FHIR referral built from a police notice is restricted, not a Part 2 record."""
    case = _case(running)
    bundle = running.partners["provider"].state.accepted[0].document
    assert case in running.partners["provider"].message_ids()
    codes = {s["code"] for s in bundle["meta"]["security"]}
    assert codes == {"R"}
    for entry in bundle["entry"]:
        assert {s["code"] for s in entry["resource"]["meta"]["security"]} == codes


# Consents written the generic FHIR way (tests/fixtures/consents), none in the hub's profile.
# Two lack R4's required `scope` (as LEAP's fixtures do) and fail structural validation.
FOREIGN_CONSENTS = {
    "opt-in-with-nested-deny.xml": "opt-in with a nested deny for one recipient",
    "opt-out-emergency-only.xml": "opt-out, emergency treatment only, nested deny",
    "label-scoped-permits.xml": "opt-out with permits scoped by security label",
    "opt-out-read-only.xml": "opt-out, read-only for a custodian and a recipient",
    "time-boxed-opt-in.json": "two-hour opt-in, nested permit by resource type",
    "deny-sensitive-labels.json": "no scope; nested deny on sensitivity labels",
    "deny-class-and-label.json": "no scope; nested denies by class and by label",
}
NO_SCOPE = {"deny-sensitive-labels.json", "deny-class-and-label.json"}
# What 42 CFR 2.31(a) needs that none of them gives, with the paragraph each answer cites
MISSING_2_31 = {
    "Consent.organization": "§2.31(a)(2)",  # who may disclose
    "Consent.provision.class": "§2.31(a)(3)",  # what may be disclosed
    f"Consent.extension({REVOCATION_STATEMENT})": "§2.31(a)(6)",  # the right to revoke
    "Consent.sourceAttachment": "§2.31(a)(8)",  # the signed form
}


def test_foreign_consents_are_read_and_refused_with_what_2_31_needs(running: RunningHub) -> None:
    """Each generic Consent (JSON or XML) gets a 422 OperationOutcome naming what 2.31 needs."""
    files = sorted((FIXTURES / "consents").iterdir())
    assert [f.name for f in files] == sorted(FOREIGN_CONSENTS)
    assert {f.suffix for f in files} == {".xml", ".json"}
    token = running.token("provider", {"consent.write"})
    for file in files:
        xml = file.suffix == ".xml"
        r = running.http.post("/fhir/Consent", content=file.read_bytes(), headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/fhir+xml" if xml else "application/fhir+json"})
        assert r.status_code == 422, (file.name, r.text)
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        said: dict[str, str] = {}
        for issue in outcome["issue"]:
            at = issue["expression"][0]
            said[at] = said.get(at, "") + issue["diagnostics"]
        if file.name in NO_SCOPE:
            assert set(said) == {"Consent.scope"}, file.name
            continue
        for where, paragraph in MISSING_2_31.items():
            assert where in said, (file.name, where)
            assert paragraph in said[where], (file.name, said[where])
        assert "Consent.patient.identifier" in said, file.name  # not a LEAD case or participant
        assert "Consent.policyRule" in said, file.name  # OPTIN/OPTOUT is not a consent kind
