"""The 42 CFR 2.32 notice and DS4P labels that go with disclosures."""

from __future__ import annotations

from adapters import json_partner
from adapters.labels import PART2_NOTICE, security_labels
from hub.outbound import DeliveryMeta


def _meta(**kw: object) -> DeliveryMeta:
    base: dict[str, object] = dict(
        delivery_id="d", message_id="m", case_ref="c", participant_ref="p", site="s",
        sender="provider", sender_name="Provider", recipient="da", purpose="LEAD-CJ-MONITORING",
        sent_at="2026-11-25T00:00:00+00:00", withheld_fields=("plan_summary",))
    base.update(kw)
    return DeliveryMeta(**base)  # type: ignore[arg-type]


def test_refrain_label_only_for_recipients_that_are_not_tpo_covered_entities() -> None:
    """NORDSCLCD is added when the recipient may not redisclose, and not otherwise."""
    assert [x["code"] for x in security_labels(refrain=True)] == ["R", "42CFRPart2", "SUD",
                                                                   "NORDSCLCD"]
    assert "NORDSCLCD" not in [x["code"] for x in security_labels(refrain=False)]


def test_json_disclosure_of_part2_data_carries_notice_scope_and_use_restriction() -> None:
    """Part 2 data to the DA: the 2.32 notice, the consent and its scope, 2.12(d) restriction."""
    doc = json_partner.render("referral-status", {"status": "engaged"}, _meta(
        part2=True, consents=(("Consent/x/_history/1", "provider may disclose engagement"),),
        justice_recipient=True)).document
    assert doc["part2"]["notice"] == PART2_NOTICE
    assert doc["part2"]["consents"] == [{"reference": "Consent/x/_history/1",
                                         "scope": "provider may disclose engagement"}]
    assert "criminal investigation" in doc["part2"]["use_restriction"]


def test_json_disclosure_without_part2_data_has_no_part2_block() -> None:
    """Police information to the DA is not a Part 2 record and is not labelled as one."""
    doc = json_partner.render("diversion-notice", {"pathway": "x"}, _meta(part2=False)).document
    assert "part2" not in doc


def test_information_that_is_not_a_part2_record_is_labelled_restricted_only() -> None:
    """Police, DA and community information carries R, and no Part 2, SUD or refrain label."""
    assert [x["code"] for x in security_labels(refrain=True, part2=False)] == ["R"]


def test_a_police_referral_bundle_carries_no_part2_labels() -> None:
    """A FHIR referral built from a police notice is not a Part 2 record: only R."""
    from adapters import fhir_ehr

    body = {"pathway": "arrest-diversion", "referred_at": "2026-11-25T00:00:00+00:00",
            "person": {"given_name": "Avery", "family_name": "Test",
                       "date_of_birth": "1988-03-14"}}
    police = fhir_ehr.render("referral", body, _meta(sender="sfpd", recipient="provider",
                                                     part2=False)).document
    provider = fhir_ehr.render("referral", body, _meta(sender="provider", recipient="provider",
                                                       part2=True, refrain=False)).document
    for bundle, codes in ((police, ["R"]), (provider, ["R", "42CFRPart2", "SUD"])):
        assert [x["code"] for x in bundle["meta"]["security"]] == codes
        for entry in bundle["entry"]:
            assert [x["code"] for x in entry["resource"]["meta"]["security"]] == codes


def test_only_a_part2_program_is_told_which_fields_it_did_not_get() -> None:
    """To the DA no list of withheld fields; to a Part 2 program, the paths (never values)."""
    to_da = json_partner.render("referral-status", {"status": "engaged"}, _meta(
        part2=True, justice_recipient=True, withheld_fields=())).document
    assert "withheld_fields" not in to_da
    to_program = json_partner.render("referral-status", {"status": "engaged"}, _meta(
        part2=True, told_withheld=True)).document
    assert to_program["withheld_fields"] == ["plan_summary"]
