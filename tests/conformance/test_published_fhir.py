"""Published FHIR instances: Gravity SDOH referral Tasks and R4 / LEAP Consents."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from adapters.fhir_ehr import render
from tests.conformance.published import sample
from tests.harness import RunningHub, notice, wait_for
from tests.unit.test_fhir_ehr import meta, referral_body

FHIR_NS = "http://hl7.org/fhir"
F = {"f": FHIR_NS}
COMPLETED = "fhir/SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample.xml"
ACCEPTED = "fhir/SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample.xml"


def _with_case_identifier(path: Path, case_ref: str) -> bytes:
    """The published Task with our case identifier added after its meta (in memory only)."""
    ET.register_namespace("", FHIR_NS)
    root = ET.parse(path).getroot()
    ident = ET.Element(f"{{{FHIR_NS}}}identifier")
    ET.SubElement(ident, f"{{{FHIR_NS}}}system", value="urn:lead-hub:case")
    ET.SubElement(ident, f"{{{FHIR_NS}}}value", value=case_ref)
    children = list(root)
    at = next(i for i, c in enumerate(children) if c.tag == f"{{{FHIR_NS}}}meta") + 1
    root.insert(at, ident)
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def test_task_code_matches_sdohcc_task_sample(samples: Path) -> None:
    """Our Task uses the same task-code|fulfill coding as the published SDOHCC Task sample."""
    root = ET.parse(sample(samples, ACCEPTED)).getroot()
    assert root.tag == f"{{{FHIR_NS}}}Task"
    sample_codes = {
        (c.find("f:system", F).get("value"), c.find("f:code", F).get("value"))
        for c in root.findall("f:code/f:coding", F)
    }
    bundle: dict[str, Any] = render("referral", referral_body(), meta()).document
    task = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")
    ours = {(c["system"], c["code"]) for c in task["code"]["coding"]}
    assert ours == sample_codes == {("http://hl7.org/fhir/CodeSystem/task-code", "fulfill")}
    assert task["intent"] == root.find("f:intent", F).get("value")


def test_published_sdoh_task_xml_is_read_and_refused_only_for_its_missing_case(
    running: RunningHub, samples: Path,
) -> None:
    """The Gravity SDOH Task parses; without a LEAD case identifier it gets an OperationOutcome."""
    r = running.post_task(sample(samples, COMPLETED).read_bytes(), "application/fhir+xml")
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
    for name, expected in ((ACCEPTED, "accepted"), (COMPLETED, "exited")):
        r = running.post_task(_with_case_identifier(sample(samples, name), case),
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


def test_published_consent_samples_are_read_and_refused_with_what_2_31_needs(
    running: RunningHub, samples: Path,
) -> None:
    """Each published Consent (JSON or XML) gets a 422 OperationOutcome, never a crash."""
    files = sorted((samples / "fhir").glob("consent-*"))
    assert len(files) == 7, [f.name for f in files]
    token = running.token("provider", {"consent.write"})
    for file in files:
        xml = file.suffix == ".xml"
        r = running.http.post("/fhir/Consent", content=file.read_bytes(), headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/fhir+xml" if xml else "application/fhir+json"})
        assert r.status_code == 422, (file.name, r.text)
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        where = {i["expression"][0] for i in outcome["issue"]}
        if "scope" not in "".join(where):  # the LEAP fixtures lack R4's required scope
            assert "Consent.sourceAttachment" in where, file.name  # no signed form on file
            assert "Consent.organization" in where, file.name  # who may disclose
