"""adapters.fhir_ehr.render: referrals and holds as FHIR R4B transaction Bundles."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from adapters.fhir_ehr import FHIR_JSON, render
from hub.errors import PermanentError
from hub.messages import ChargeHold, Contact, HoldStatus, Pathway, Person, Referral
from hub.outbound import DeliveryMeta
from tests.harness import example

FHIR_NS = {"f": "http://hl7.org/fhir"}
DELIVERY_ID = "6f1c2d3e-4a5b-5c6d-8e7f-0123456789ab"
CASE_REF = "8d4c0b6e-2f1a-4c3b-9d8e-112233445566"


def meta(participant_ref: str | None = "P-42") -> DeliveryMeta:
    return DeliveryMeta(
        delivery_id=DELIVERY_ID, message_id=CASE_REF, case_ref=CASE_REF,
        participant_ref=participant_ref, site="santa-fe", sender="sfpd",
        sender_name="Santa Fe Police Department", recipient="provider", purpose="TREAT",
        sent_at="2024-05-01T10:05:00+00:00", withheld_fields=(),
    )


def referral_body(**changes: Any) -> dict[str, Any]:
    referral = Referral(
        case_ref=CASE_REF,
        pathway=Pathway.ARREST_DIVERSION,
        referred_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        referring_agency="Santa Fe Police Department",
        person=Person(given_name="Jane", family_name="Doe", date_of_birth=date(1980, 2, 3),
                      state_id="NM-123", gender="female"),
        contact=Contact(phone="505-555-0100", address="1 Main St, Santa Fe"),
        referral_reason="possession, eligible for LEAD",
    )
    return referral.model_copy(update=changes).model_dump(mode="json", exclude_none=True)


def hold_body() -> dict[str, Any]:
    hold = ChargeHold(
        case_ref=CASE_REF, status=HoldStatus.HELD,
        decided_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC), hold_deadline=date(2024, 8, 1),
        conditions=["attend intake within 14 days", "no new arrests"],
    )
    return hold.model_dump(mode="json", exclude_none=True)


def resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["resourceType"]: e for e in bundle["entry"]}


@pytest.fixture(scope="module")
def referral_bundle() -> dict[str, Any]:
    return render("referral", referral_body(), meta()).document


def test_referral_bundle_validates_as_r4b(referral_bundle: dict[str, Any]) -> None:
    """The referral Bundle is a valid R4B transaction Bundle, sent as FHIR JSON."""
    rendered = render("referral", referral_body(), meta())
    assert rendered.content_type == FHIR_JSON == "application/fhir+json"
    parsed = Bundle.model_validate(referral_bundle)
    assert parsed.type == "transaction"


def test_referral_bundle_has_patient_service_request_task(referral_bundle: dict[str, Any]) -> None:
    """A referral is a Patient, a ServiceRequest and a Task, in that order."""
    assert [e["resource"]["resourceType"] for e in referral_bundle["entry"]] == [
        "Patient", "ServiceRequest", "Task",
    ]


def test_every_entry_is_a_conditional_create(referral_bundle: dict[str, Any]) -> None:
    """Each entry is a POST to its type with ifNoneExist on a hub identifier."""
    by_type = resources(referral_bundle)
    expected = {
        "Patient": "identifier=urn:lead-hub:participant|P-42",
        "ServiceRequest": f"identifier=urn:lead-hub:case|{CASE_REF}",
        "Task": f"identifier=urn:lead-hub:delivery|{DELIVERY_ID}",
    }
    for kind, if_none_exist in expected.items():
        request = by_type[kind]["request"]
        assert request == {"method": "POST", "url": kind, "ifNoneExist": if_none_exist}


def test_conditional_create_matches_resource_identifier(referral_bundle: dict[str, Any]) -> None:
    """Each ifNoneExist searches for an identifier the resource itself carries."""
    for entry in referral_bundle["entry"]:
        idents = {f"identifier={i['system']}|{i['value']}"
                  for i in entry["resource"]["identifier"]}
        assert entry["request"]["ifNoneExist"] in idents


def test_patient_without_participant_is_keyed_on_case() -> None:
    """With no participant id, the Patient is conditionally created on the case identifier."""
    bundle = render("referral", referral_body(), meta(participant_ref=None)).document
    patient = resources(bundle)["Patient"]
    assert patient["request"]["ifNoneExist"] == f"identifier=urn:lead-hub:case|{CASE_REF}"


def test_task_focus_points_at_service_request(referral_bundle: dict[str, Any]) -> None:
    """The Task's focus is the ServiceRequest's fullUrl and its `for` the Patient's."""
    by_type = resources(referral_bundle)
    task = by_type["Task"]["resource"]
    assert task["focus"]["reference"] == by_type["ServiceRequest"]["fullUrl"]
    assert task["for"]["reference"] == by_type["Patient"]["fullUrl"]
    assert by_type["ServiceRequest"]["resource"]["subject"]["reference"] == (
        by_type["Patient"]["fullUrl"]
    )


def test_full_urls_are_distinct_uuids(referral_bundle: dict[str, Any]) -> None:
    """The three entries have different urn:uuid fullUrls."""
    urls = [e["fullUrl"] for e in referral_bundle["entry"]]
    assert len(set(urls)) == 3
    assert all(u.startswith("urn:uuid:") for u in urls)


def test_patient_carries_person_and_contact(referral_bundle: dict[str, Any]) -> None:
    """The Patient has the person's name, birth date, gender, state id, phone and address."""
    patient = resources(referral_bundle)["Patient"]["resource"]
    assert patient["name"] == [{"family": "Doe", "given": ["Jane"]}]
    assert patient["birthDate"] == "1980-02-03"
    assert patient["gender"] == "female"
    assert {"system": "urn:lead-hub:state-id", "value": "NM-123"} in patient["identifier"]
    assert patient["telecom"] == [{"system": "phone", "value": "505-555-0100"}]
    assert patient["address"] == [{"text": "1 Main St, Santa Fe"}]


def test_withheld_contact_is_absent_from_patient() -> None:
    """A referral whose contact was withheld renders a Patient without telecom or address."""
    body = referral_body(contact=None)
    patient = resources(render("referral", body, meta()).document)["Patient"]["resource"]
    assert "telecom" not in patient and "address" not in patient


def test_service_request_carries_reason(referral_bundle: dict[str, Any]) -> None:
    """The referral reason becomes the ServiceRequest's reasonCode text."""
    sr = resources(referral_bundle)["ServiceRequest"]["resource"]
    assert sr["reasonCode"] == [{"text": "possession, eligible for LEAD"}]
    assert sr["status"] == "active" and sr["intent"] == "order"


def test_charge_hold_renders_a_communication() -> None:
    """A charge hold is one Communication, conditionally created, about the case."""
    bundle = render("charge-hold", hold_body(), meta()).document
    Bundle.model_validate(bundle)
    [entry] = bundle["entry"]
    communication = entry["resource"]
    assert communication["resourceType"] == "Communication"
    assert entry["request"]["ifNoneExist"] == f"identifier=urn:lead-hub:delivery|{DELIVERY_ID}"
    assert communication["about"] == [
        {"identifier": {"system": "urn:lead-hub:case", "value": CASE_REF}}
    ]
    text = communication["payload"][0]["contentString"]
    assert "held" in text and "2024-08-01" in text and "no new arrests" in text


@pytest.mark.parametrize("form", ["referral-status", "diversion-notice", "nonsense"])
def test_unknown_form_is_permanent_error(form: str) -> None:
    """A form with no FHIR rendering raises PermanentError (park, do not retry)."""
    with pytest.raises(PermanentError):
        render(form, referral_body(), meta())


def test_invalid_bundle_is_permanent_error() -> None:
    """A body that would make an invalid R4B Bundle raises PermanentError naming the place."""
    body = referral_body()
    body["person"]["date_of_birth"] = "1980-13-45"
    with pytest.raises(PermanentError, match="birthDate"):
        render("referral", body, meta())


def test_task_code_matches_sdohcc_task_example(referral_bundle: dict[str, Any]) -> None:
    """Our Task uses the same task-code|fulfill coding as the SDOHCC-shaped Task example."""
    root = ET.fromstring(example("fhir/task-accepted.xml"))
    assert root.tag == "{http://hl7.org/fhir}Task"
    sample_codes = {
        (c.find("f:system", FHIR_NS).get("value"), c.find("f:code", FHIR_NS).get("value"))
        for c in root.findall("f:code/f:coding", FHIR_NS)
    }
    task = resources(referral_bundle)["Task"]["resource"]
    ours = {(c["system"], c["code"]) for c in task["code"]["coding"]}
    assert ours == sample_codes == {("http://hl7.org/fhir/CodeSystem/task-code", "fulfill")}
    assert task["intent"] == root.find("f:intent", FHIR_NS).get("value")
