"""Providers' EHRs report referral status as FHIR R4 Task updates, JSON or XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fhir.resources.R4B.bundle import Bundle

from tests.harness import RunningHub, example, notice, wait_for

FHIR_NS = "http://hl7.org/fhir"
COMPLETED = "fhir/task-completed.xml"
ACCEPTED = "fhir/task-accepted.xml"


def _without_case_identifier(raw: bytes) -> bytes:
    """The example Task with its urn:lead-hub:case identifier taken out (in memory only)."""
    ET.register_namespace("", FHIR_NS)
    root = ET.fromstring(raw)
    idents = root.findall(f"{{{FHIR_NS}}}identifier")
    assert len(idents) == 1
    root.remove(idents[0])
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def test_sdoh_task_xml_is_read_and_refused_only_for_its_missing_case(
    running: RunningHub,
) -> None:
    """An SDOH referral Task parses; without a LEAD case identifier it gets an OperationOutcome."""
    r = running.post_task(_without_case_identifier(example(COMPLETED)), "application/fhir+xml")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/fhir+json"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in body["issue"]] == [["Task.identifier"]]


def test_sdoh_tasks_with_case_identifier_become_status_messages(running: RunningHub) -> None:
    """The accepted and completed Task examples map to 'accepted' and 'exited' for the case."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("referral delivered", lambda: running.settled(case, 2))
    for name, expected in ((ACCEPTED, "accepted"), (COMPLETED, "exited")):
        r = running.post_task(example(name, case), "application/fhir+xml")
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
    r = running.post_task(task.model_dump_json().encode(), "application/fhir+json")
    assert r.status_code == 202, r.text
    stored = running.hub.store.get_message(r.headers["X-Hub-Message-Id"])
    assert stored is not None and b'"status":"engaged"' in running.hub.sealer.open(stored.body)


def test_bad_fhir_gets_operation_outcome_naming_the_element(running: RunningHub) -> None:
    """An invalid Task is refused with an OperationOutcome locating each problem."""
    r = running.post_task(b'{"resourceType": "Task", "status": "ready", "priority": 5}',
                   "application/fhir+json")
    assert r.status_code == 422
    issues = r.json()["issue"]
    assert "Task.priority" in {i["expression"][0] for i in issues}
    r = running.post_task(b'{"resourceType": "Task", "status": "ready", "intent": "order"}',
                   "application/fhir+json")
    assert r.status_code == 422
    assert {i["expression"][0] for i in r.json()["issue"]} == {
        "Task.identifier", "Task.status", "Task.lastModified"}
    r = running.post_task(b"<Task xmlns='http://hl7.org/fhir'><oops", "application/fhir+xml")
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


def test_fhir_endpoint_without_token_answers_operation_outcome(running: RunningHub) -> None:
    """401 on the FHIR endpoint is an OperationOutcome too; police cannot post Task updates."""
    r = running.http.post("/fhir/Task", content=b"{}",
                          headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    police = running.token("sfpd", {"status.write"})
    r = running.post_task(b"{}", "application/fhir+json", token=police)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
