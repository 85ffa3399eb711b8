"""Published NIEM instances (New Orleans JTMP, OJBC) through the police XML intake."""

from __future__ import annotations

from pathlib import Path

from fhir.resources.R4B.bundle import Bundle

from tests.conformance.published import sample
from tests.harness import RunningHub, wait_for
from tests.queues import depth


def test_ojbc_charge_referral_becomes_a_referral_for_its_incident_subject(
    running: RunningHub, samples: Path,
) -> None:
    """The OJBC Vermont charge referral maps its incident subject (John Doe) to a FHIR referral."""
    r = running.post_niem(sample(samples, "niem/Vermont_Charge_Referral.xml").read_bytes())
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
    raw = sample(samples, "niem/ArrestSampleConcise.xml").read_bytes()
    r = running.post_niem(raw)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "query:subject"
    assert "2 subjects" in r.json()["errors"][0]["message"]
    r = running.post_niem(raw, "?subject=1")
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    wait_for("delivered", lambda: running.settled(message_id, 2))
    body = running.partners["da"].state.accepted[0].document["body"]
    assert [c["statute"] for c in body["incident"]["charges"]] == ["0101", "0101"]
    # the exchange gives local times without an offset: read as the site's zone (Denver, MDT)
    assert body["referred_at"] == "2006-05-04T18:13:51-06:00"


def test_nola_charge_filing_is_refused_as_unmapped(running: RunningHub, samples: Path) -> None:
    """The NOLA charge filing (a DA exchange) has no mapping: 422 and nothing is queued."""
    r = running.post_niem(sample(samples, "niem/ChargeFiling.xml").read_bytes())
    assert r.status_code == 422
    assert "no mapping" in r.text
    assert depth(running.hub, "ingest") == 0
    assert running.partners["da"].state.accepted == []
