"""A consent belongs to the case it was given for: one case's final disposition does not
release or end a consent of another case of the same person (42 CFR 2.35)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from consent.fhir_consent import PARTICIPANT_SYSTEM
from consent.model import ConsentKind
from tests.harness import RunningHub, hold, notice, status, wait_for
from tests.integration.test_consent_flow import _fhir, cj_consent

PERSON = {"given_name": "Rowan", "family_name": "Twicearrested", "date_of_birth": "1990-07-02",
          "state_id": "NM-T-7777"}
REVOKE = {"resourceType": "Parameters", "parameter": [
    {"name": "method", "valueCode": "written"}, {"name": "revokedBy", "valueString": "patient"}]}


def _two_arrests(running: RunningHub) -> tuple[str, str]:
    """Two diversion notices for one person: two cases, one participant."""
    cases = []
    for _ in range(2):
        case = running.submit("sfpd", "diversion-notices", notice(person=PERSON))
        wait_for("notice delivered", lambda c=case: running.settled(c, 2))  # type: ignore[misc]
        cases.append(case)
    first, second = (running.hub.store.case(running.hub.site.site, c) for c in cases)
    assert first and second and first.participant_id == second.participant_id
    return cases[0], cases[1]


def _dispose(running: RunningHub, case: str) -> None:
    done = running.submit("da", "charge-holds", hold(case, status="final-disposition"))
    wait_for("disposition settled", lambda: running.settled(done, 2))


def _status_to_da(running: RunningHub, case: str) -> str:
    message_id = running.submit("provider", "referral-status", status(case))
    wait_for("status settled", lambda: running.settled(message_id, 2))
    return next(d.status for d in running.hub.store.deliveries_of(message_id)
                if d.recipient == "da")


def _general_until_disposition(patient_case: str, **overrides: Any) -> dict[str, Any]:
    return cj_consent(patient_case, kind=ConsentKind.GENERAL, revocable_after=None,
                      valid_until=None, expiry_event="final-disposition", **overrides)


def test_disposition_of_one_case_does_not_release_another_cases_2_35_consent(
    running: RunningHub,
) -> None:
    """Two arrests; the first is disposed: the second case's §2.35 consent is still 409."""
    first, second = _two_arrests(running)
    r = _fhir(running, "POST", "/fhir/Consent", cj_consent(second))
    assert r.status_code == 201, r.text
    consent_id = r.json()["id"]
    _dispose(running, first)
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", REVOKE)
    assert r.status_code == 409, r.text
    assert f"case {second}" in r.json()["issue"][0]["diagnostics"]
    _dispose(running, second)
    r = _fhir(running, "POST", f"/fhir/Consent/{consent_id}/$revoke", REVOKE)
    assert r.status_code == 200, r.text


def test_an_expiry_event_of_another_case_does_not_end_a_consent(running: RunningHub) -> None:
    """A consent ending "at final disposition" of case 2 still lets status out after case 1's."""
    first, second = _two_arrests(running)
    r = _fhir(running, "POST", "/fhir/Consent", _general_until_disposition(second))
    assert r.status_code == 201, r.text
    _dispose(running, first)
    assert _status_to_da(running, second) == "delivered"
    _dispose(running, second)
    assert _status_to_da(running, second) == "withheld"


def test_a_disposition_before_the_consent_was_signed_does_not_end_it(
    running: RunningHub,
) -> None:
    """Only events after signing count: a consent signed after the disposition is in force."""
    first, _second = _two_arrests(running)
    _dispose(running, first)
    late = _general_until_disposition(first, signed_at=datetime.now(timezone.utc))
    r = _fhir(running, "POST", "/fhir/Consent", late)
    assert r.status_code == 201, r.text
    assert _status_to_da(running, first) == "delivered"


def test_a_consent_given_for_one_case_does_not_cover_another(running: RunningHub) -> None:
    """Status about case 2 under a consent given for case 1 is withheld: no consent for it."""
    first, second = _two_arrests(running)
    r = _fhir(running, "POST", "/fhir/Consent", _general_until_disposition(first))
    assert r.status_code == 201, r.text
    assert _status_to_da(running, first) == "delivered"
    message_id = running.submit("provider", "referral-status", status(second))
    wait_for("status settled", lambda: running.settled(message_id, 2))
    rows = [r for r in running.hub.ledger.for_message(message_id) if r.recipient == "da"]
    assert rows and all(r.decision == "withheld" for r in rows)
    assert any("R1: Part 2 record and no consent on file" in r.reason for r in rows)


def test_a_person_wide_consent_ends_only_when_every_case_is_disposed(
    running: RunningHub,
) -> None:
    """A consent naming the participant: case 1's disposition is not enough; both cases' is."""
    first, second = _two_arrests(running)
    found = running.hub.store.case(running.hub.site.site, first)
    assert found and found.participant_id
    consent = _general_until_disposition(first)
    consent["patient"]["identifier"] = {"system": PARTICIPANT_SYSTEM,
                                        "value": found.participant_id}
    r = _fhir(running, "POST", "/fhir/Consent", consent)
    assert r.status_code == 201, r.text
    _dispose(running, first)
    assert _status_to_da(running, second) == "delivered"
    _dispose(running, second)
    assert _status_to_da(running, second) == "withheld"
