"""Police records systems may send NIEM XML arrest exchanges; the mapped shapes are accepted."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.harness import FIXTURES, RunningHub, example, wait_for
from tests.queues import depth


def test_ojbc_charge_referral_becomes_a_referral_for_its_incident_subject(
    running: RunningHub,
) -> None:
    """The OJBC-shaped charge referral maps its incident subject (not victim or witness)."""
    r = running.post_niem(example("niem/charge-referral.xml"))
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    wait_for("delivered", lambda: running.settled(message_id, 2))
    bundle = Bundle.model_validate(running.partners["provider"].state.accepted[0].document)
    patient = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient")
    assert (patient.name[0].given[0], patient.name[0].family) == ("Eusebio", "Lovato")
    assert str(patient.birthDate) == "1969-08-27"
    notice = running.partners["da"].state.accepted[0].document["body"]
    assert notice["incident"]["report_number"] == "SFPD-2026-011920"
    assert [c["description"] for c in notice["incident"]["charges"]] == [
        "Shoplifting", "Possession of a controlled substance"]
    # the incident's start has no offset: read in the site's zone (Denver, MST in November)
    assert notice["incident"]["occurred_at"] == "2026-11-03T19:20:00-07:00"


def test_nola_arrest_exchange_needs_the_subject_named_when_it_has_two(
    running: RunningHub,
) -> None:
    """The NIEM 5 arrest has two subjects: without ?subject it is 422, with it accepted."""
    raw = example("niem/arrest-exchange.xml")
    r = running.post_niem(raw)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "query:subject"
    assert "2 subjects" in r.json()["errors"][0]["message"]
    r = running.post_niem(raw, "?subject=1")
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]
    wait_for("delivered", lambda: running.settled(message_id, 2))
    body = running.partners["da"].state.accepted[0].document["body"]
    assert (body["person"]["given_name"], body["person"]["family_name"]) == (
        "Carmelita", "Roybal")
    assert [c["statute"] for c in body["incident"]["charges"]] == ["3599", "2399"]
    # the exchange gives local times without an offset: read as the site's zone (Denver, MDT)
    assert body["referred_at"] == "2026-10-17T23:05:00-06:00"


def test_unsupported_or_broken_xml_is_422_and_nothing_is_queued(running: RunningHub) -> None:
    """An exchange with no mapping, or XML that is not well formed, is refused clearly."""
    for body, words in (((FIXTURES / "niem" / "charge-filing.xml").read_bytes(), "no mapping"),
                        (b"<a><b></a>", "well-formed")):
        r = running.post_niem(body)
        assert r.status_code == 422
        assert words in r.text
    assert depth(running.hub, "ingest") == 0
    assert running.partners["da"].state.accepted == []


def test_xml_entities_are_not_expanded(running: RunningHub) -> None:
    """A document with an external entity (XXE) is not resolved: it fails without reading files."""
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<x>&e;</x>')
    r = running.post_niem(evil)
    assert r.status_code == 422
    assert "root:" not in r.text
