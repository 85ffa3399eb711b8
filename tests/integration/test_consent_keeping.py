"""Who keeps a consent, and what a consent may say: a program sees and changes only the
consents it holds, and a grant the gate could never honour is refused at registration."""

from __future__ import annotations

from datetime import timedelta

from consent.model import ConsentKind
from tests.harness import RunningHub
from tests.integration.test_consent_flow import NOW, _case, _fhir, cj_consent

REVOKE = {"resourceType": "Parameters", "parameter": [
    {"name": "method", "valueCode": "written"}, {"name": "revokedBy", "valueString": "patient"}]}


def _as(running: RunningHub, agency: str, method: str, path: str, body: object = None) -> object:
    token = running.token(agency, {"consent.write"})
    return running.http.request(method, path, json=body,
                                headers={"Authorization": f"Bearer {token}"})


def test_another_program_cannot_read_change_or_revoke_a_consent(running: RunningHub) -> None:
    """provider-2 gets 404 for provider's consent, names included; compliance may read it."""
    case = _case(running)
    general = cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None)
    r = _fhir(running, "POST", "/fhir/Consent", general)
    assert r.status_code == 201, r.text
    consent_id = r.json()["id"]
    for method, path, body in (
            ("GET", f"/fhir/Consent/{consent_id}", None),
            ("GET", f"/fhir/Consent/{consent_id}/_history", None),
            ("GET", f"/fhir/Consent/{consent_id}/_history/1", None),
            ("PUT", f"/fhir/Consent/{consent_id}", general),
            ("POST", f"/fhir/Consent/{consent_id}/$revoke", REVOKE)):
        answer = _as(running, "provider-2", method, path, body)
        assert answer.status_code == 404, (method, path, answer.text)  # type: ignore[attr-defined]
        assert "Avery" not in answer.text  # type: ignore[attr-defined]
    assert _fhir(running, "GET", f"/fhir/Consent/{consent_id}").json()["status"] == "active"
    seen = _as(running, "compliance", "GET", f"/fhir/Consent/{consent_id}")
    assert seen.status_code == 200  # type: ignore[attr-defined]


def test_a_program_cannot_register_a_consent_held_by_another(running: RunningHub) -> None:
    """provider-2 posting a consent whose organization is provider: 422 naming organization."""
    case = _case(running)
    r = _as(running, "provider-2", "POST", "/fhir/Consent",
            cj_consent(case, kind=ConsentKind.GENERAL, revocable_after=None))
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert "Consent.organization" in r.text  # type: ignore[attr-defined]


def test_a_consent_granting_treatment_to_the_da_is_refused(running: RunningHub) -> None:
    """A general consent naming treatment, clinical or identity classes for the DA: 422."""
    case = _case(running)
    for classes in (["referral", "treatment"], ["clinical"], ["identity", "engagement"]):
        r = _fhir(running, "POST", "/fhir/Consent", cj_consent(
            case, kind=ConsentKind.GENERAL, revocable_after=None, classes=classes))
        assert r.status_code == 422, (classes, r.text)
        issue = r.json()["issue"]
        assert any(i.get("expression") == ["Consent.provision.class"]
                   and "never take effect" in i["diagnostics"] and "to da" in i["diagnostics"]
                   for i in issue), issue
    # counselling notes on their own, to the DA: refused too
    r = _fhir(running, "POST", "/fhir/Consent", cj_consent(
        case, kind=ConsentKind.GENERAL, revocable_after=None, classes=["counseling-notes"]))
    assert r.status_code == 422 and "never take effect" in r.text


def test_a_court_order_granting_clinical_detail_to_police_is_refused(running: RunningHub) -> None:
    """A court order may name identity classes for justice agencies, never clinical ones."""
    case = _case(running)
    token = running.token("compliance", {"court-order.write"})
    order = {"case_ref": case, "court": "First Judicial District Court", "docket": "D-1",
             "issued_at": (NOW - timedelta(minutes=1)).isoformat(),
             "valid_until": (NOW + timedelta(days=30)).isoformat(), "disclosers": ["provider"],
             "recipients": ["sfpd"], "purposes": ["LEAD-CJ-MONITORING"],
             "classes": ["engagement", "clinical"],
             "order_document_url": "https://court.example/orders/1.pdf", "entered_by": "Test"}
    r = running.http.post("/v1/court-orders", json=order,
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422, r.text
    assert "clinical to sfpd" in r.text
    order["classes"] = ["engagement", "identity"]
    r = running.http.post("/v1/court-orders", json=order,
                          headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
