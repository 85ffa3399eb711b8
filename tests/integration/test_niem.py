"""Police records systems may send NIEM XML arrest exchanges; published instances are accepted."""

from __future__ import annotations

from pathlib import Path

from fhir.resources.R4B.bundle import Bundle

from tests.harness import RunningHub, wait_for
from tests.queues import depth


def _post_xml(running: RunningHub, body: bytes, query: str = ""):  # type: ignore[no-untyped-def]
    return running.http.post(
        f"/v1/agencies/sfpd/diversion-notices{query}", content=body,
        headers={"Content-Type": "application/xml",
                 "Authorization": f"Bearer {running.token('sfpd')}"})


def test_ojbc_charge_referral_becomes_a_referral_for_its_incident_subject(
    running: RunningHub, samples: Path,
) -> None:
    """The OJBC Vermont charge referral maps its incident subject (John Doe) to a FHIR referral."""
    r = _post_xml(running, (samples / "niem" / "Vermont_Charge_Referral.xml").read_bytes())
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    wait_for("delivered", lambda: running.settled(message_id, 2))
    bundle = Bundle.model_validate(running.partners["provider"].state.accepted[0].document)
    patient = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient")
    assert (patient.name[0].given[0], patient.name[0].family) == ("John", "Doe")
    assert str(patient.birthDate) == "1957-04-01"
    notice = running.partners["da"].state.accepted[0].document["body"]
    assert notice["incident"]["report_number"] == "ABC123"
    assert [c["description"] for c in notice["incident"]["charges"]] == [
        "Domestic disturbance", "Armed Robbery"]


def test_nola_arrest_exchange_needs_the_subject_named_when_it_has_two(
    running: RunningHub, samples: Path,
) -> None:
    """The NOLA NIEM 5 arrest has two subjects: without ?subject it is 422, with it accepted."""
    raw = (samples / "niem" / "ArrestSampleConcise.xml").read_bytes()
    r = _post_xml(running, raw)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "query:subject"
    assert "2 subjects" in r.json()["errors"][0]["message"]
    r = _post_xml(running, raw, "?subject=1")
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    wait_for("delivered", lambda: running.settled(message_id, 2))
    body = running.partners["da"].state.accepted[0].document["body"]
    assert [c["statute"] for c in body["incident"]["charges"]] == ["0101", "0101"]
    # the exchange gives local times without an offset: read as the site's zone (Denver, MDT)
    assert body["referred_at"] == "2006-05-04T18:13:51-06:00"


def test_unsupported_or_broken_xml_is_422_and_nothing_is_queued(
    running: RunningHub, samples: Path,
) -> None:
    """An exchange with no mapping, or XML that is not well formed, is refused clearly."""
    for body, words in (((samples / "niem" / "ChargeFiling.xml").read_bytes(), "no mapping"),
                        (b"<a><b></a>", "well-formed")):
        r = _post_xml(running, body)
        assert r.status_code == 422
        assert words in r.text
    assert depth(running.hub, "ingest") == 0
    assert running.partners["da"].state.accepted == []


def test_xml_entities_are_not_expanded(running: RunningHub) -> None:
    """A document with an external entity (XXE) is not resolved: it fails without reading files."""
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<x>&e;</x>')
    r = _post_xml(running, evil)
    assert r.status_code == 422
    assert "root:" not in r.text
