"""Providers' EHRs report referral status as FHIR R4 Task updates, JSON or XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle

from tests.harness import RunningHub, notice, wait_for

FHIR_NS = "http://hl7.org/fhir"
COMPLETED = "SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample.xml"
ACCEPTED = "SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample.xml"


def _with_case_identifier(sample: Path, case_ref: str) -> bytes:
    """The published Task with our case identifier added after its meta (in memory only)."""
    ET.register_namespace("", FHIR_NS)
    root = ET.parse(sample).getroot()
    ident = ET.Element(f"{{{FHIR_NS}}}identifier")
    ET.SubElement(ident, f"{{{FHIR_NS}}}system", value="urn:lead-hub:case")
    ET.SubElement(ident, f"{{{FHIR_NS}}}value", value=case_ref)
    children = list(root)
    at = next(i for i, c in enumerate(children) if c.tag == f"{{{FHIR_NS}}}meta") + 1
    root.insert(at, ident)
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def _post_task(running: RunningHub, body: bytes, content_type: str, token: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": content_type,
               "Authorization": f"Bearer {token or running.token('provider')}"}
    return running.http.post("/fhir/Task", content=body, headers=headers)


def test_published_sdoh_task_xml_is_read_and_refused_only_for_its_missing_case(
    running: RunningHub, samples: Path,
) -> None:
    """The Gravity SDOH Task parses; without a LEAD case identifier it gets an OperationOutcome."""
    r = _post_task(running, (samples / "fhir" / COMPLETED).read_bytes(), "application/fhir+xml")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/fhir+json"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in body["issue"]] == [["Task.identifier"]]


def test_published_sdoh_tasks_with_case_identifier_become_status_messages(
    running: RunningHub, samples: Path,
) -> None:
    """Accepted and completed Task samples map to 'accepted' and 'exited' for the case."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("referral delivered", lambda: running.settled(case, 2))
    for sample, expected in ((ACCEPTED, "accepted"), (COMPLETED, "exited")):
        r = _post_task(running, _with_case_identifier(samples / "fhir" / sample, case),
                       "application/fhir+xml")
        assert r.status_code == 202, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        message_id = r.headers["X-Hub-Message-Id"]
        wait_for("status settled", lambda m=message_id: running.settled(m, 2))
        rows = running.hub.ledger.for_message(message_id)
        assert {r.field_path for r in rows if r.recipient == "da"} == {
            "case_ref", "status", "occurred_at"}
        assert all(r.decision == "withheld" for r in rows)
        stored = running.hub.store.get_message(message_id)
        assert stored is not None and stored.case_ref == case
        plain = running.hub.sealer.open(stored.body)
        assert f'"status":"{expected}"'.encode() in plain


def test_the_task_the_hub_sent_comes_back_as_json_update(running: RunningHub) -> None:
    """A provider updates the Task from our referral Bundle (JSON, in-progress) -> 'engaged'."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("referral delivered", lambda: running.settled(case, 2))
    bundle = Bundle.model_validate(running.partners["provider"].state.accepted[0].document)
    task = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Task")
    task.status = "in-progress"
    task.lastModified = "2026-11-20T10:00:00Z"
    task.focus.reference = "ServiceRequest/local-123"  # the EHR's own ids replace ours
    task.for_fhir.reference = "Patient/local-9"
    r = _post_task(running, task.model_dump_json().encode(), "application/fhir+json")
    assert r.status_code == 202, r.text
    stored = running.hub.store.get_message(r.headers["X-Hub-Message-Id"])
    assert stored is not None and b'"status":"engaged"' in running.hub.sealer.open(stored.body)


def test_bad_fhir_gets_operation_outcome_naming_the_element(running: RunningHub) -> None:
    """An invalid Task is refused with an OperationOutcome locating each problem."""
    r = _post_task(running, b'{"resourceType": "Task", "status": "ready", "priority": 5}',
                   "application/fhir+json")
    assert r.status_code == 422
    issues = r.json()["issue"]
    assert "Task.priority" in {i["expression"][0] for i in issues}
    r = _post_task(running, b'{"resourceType": "Task", "status": "ready", "intent": "order"}',
                   "application/fhir+json")
    assert r.status_code == 422
    assert {i["expression"][0] for i in r.json()["issue"]} == {
        "Task.identifier", "Task.status", "Task.lastModified"}
    r = _post_task(running, b"<Task xmlns='http://hl7.org/fhir'><oops", "application/fhir+xml")
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


def test_fhir_endpoint_without_token_answers_operation_outcome(running: RunningHub) -> None:
    """401 on the FHIR endpoint is an OperationOutcome too; police cannot post Task updates."""
    r = running.http.post("/fhir/Task", content=b"{}",
                          headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    police = running.token("sfpd", {"status.write"})
    r = _post_task(running, b"{}", "application/fhir+json", token=police)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
