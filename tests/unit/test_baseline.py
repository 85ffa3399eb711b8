"""consent.baseline: the deny-by-default policy used until consents can be registered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consent.baseline import BaselinePolicy
from consent.decisions import Decision, DisclosureContext, Party
from hub.classification import DataClass, FieldValue

POLICE = Party("sfpd", "police", part2_program=False, tpo_covered_entity=False)
DA = Party("da", "prosecutor", part2_program=False, tpo_covered_entity=False)
PROVIDER = Party("provider", "treatment", part2_program=True, tpo_covered_entity=True)
OTHER_PROVIDER = Party("clinic", "treatment", part2_program=True, tpo_covered_entity=True)
OUTREACH = Party("outreach", "community", part2_program=False, tpo_covered_entity=False)
COMPLIANCE = Party("audit", "compliance", part2_program=False, tpo_covered_entity=False)
# A community case-management agency that is itself a Part 2 program: its kind alone would pass.
PART2_COMMUNITY = Party("casemgmt", "community", part2_program=True, tpo_covered_entity=False)
PART2_DISCLOSERS = [PROVIDER, PART2_COMMUNITY]

ALL_PARTIES = [POLICE, DA, PROVIDER, OTHER_PROVIDER, OUTREACH, COMPLIANCE]
JUSTICE = [POLICE, DA]
CLINICAL_CLASSES = [DataClass.TREATMENT, DataClass.CLINICAL, DataClass.COUNSELING_NOTES]
NON_CLINICAL = [c for c in DataClass if c not in CLINICAL_CLASSES]


def ctx(discloser: Party, recipient: Party) -> DisclosureContext:
    return DisclosureContext(
        site="santa-fe", participant_id=None, discloser=discloser, recipient=recipient,
        purpose="TREAT", message_type="diversion-notice", at=datetime(2024, 5, 1, tzinfo=UTC),
    )


def field(data_class: DataClass, path: str = "some.field") -> FieldValue:
    return FieldValue(path, path, data_class, "value")


def decide_one(discloser: Party, recipient: Party, data_class: DataClass) -> Decision:
    [decision] = BaselinePolicy().decide(ctx(discloser, recipient), [field(data_class)])
    return decision


def pid(party: Party) -> str:
    return party.agency


@pytest.mark.parametrize("recipient", ALL_PARTIES, ids=pid)
@pytest.mark.parametrize("discloser", ALL_PARTIES, ids=pid)
def test_counseling_notes_always_denied(discloser: Party, recipient: Party) -> None:
    """Counselling notes are denied to every recipient from every discloser, even to itself."""
    decision = decide_one(discloser, recipient, DataClass.COUNSELING_NOTES)
    assert not decision.permit
    assert decision.reason.startswith("R7")


@pytest.mark.parametrize("recipient", JUSTICE, ids=pid)
@pytest.mark.parametrize("data_class", CLINICAL_CLASSES)
@pytest.mark.parametrize("discloser", [POLICE, DA, OUTREACH, PROVIDER], ids=pid)
def test_clinical_classes_never_reach_police_or_da(
    discloser: Party, data_class: DataClass, recipient: Party
) -> None:
    """Treatment, clinical and counselling classes are denied to police and the DA, from anyone."""
    decision = decide_one(discloser, recipient, data_class)
    assert not decision.permit
    assert decision.legal_basis.startswith("none")


@pytest.mark.parametrize("recipient", JUSTICE, ids=pid)
@pytest.mark.parametrize("data_class", [DataClass.TREATMENT, DataClass.CLINICAL])
def test_treatment_to_justice_cites_r5_r6_even_from_police(
    data_class: DataClass, recipient: Party
) -> None:
    """Treatment/clinical to justice is denied under R5/R6 though police data would pass."""
    decision = decide_one(POLICE, recipient, data_class)
    assert not decision.permit
    assert decision.reason.startswith("R5/R6")


@pytest.mark.parametrize("recipient", [POLICE, DA, OTHER_PROVIDER, OUTREACH, COMPLIANCE], ids=pid)
@pytest.mark.parametrize("data_class", list(DataClass))
@pytest.mark.parametrize("discloser", PART2_DISCLOSERS, ids=pid)
def test_part2_origin_to_another_agency_always_denied(
    discloser: Party, data_class: DataClass, recipient: Party
) -> None:
    """Nothing from a Part 2 program reaches another agency without a consent."""
    assert not decide_one(discloser, recipient, data_class).permit


@pytest.mark.parametrize("recipient", [POLICE, DA, OTHER_PROVIDER, OUTREACH, COMPLIANCE], ids=pid)
@pytest.mark.parametrize("data_class", NON_CLINICAL)
@pytest.mark.parametrize("discloser", PART2_DISCLOSERS, ids=pid)
def test_part2_origin_denial_cites_r1(
    discloser: Party, data_class: DataClass, recipient: Party
) -> None:
    """A Part 2 program's non-clinical data to another agency is denied with an R1 reason."""
    decision = decide_one(discloser, recipient, data_class)
    assert not decision.permit
    assert decision.reason.startswith("R1")
    assert "2.31" in decision.legal_basis


@pytest.mark.parametrize("data_class", [DataClass.JUSTICE, DataClass.IDENTITY, DataClass.REFERRAL])
def test_police_justice_data_to_da_permitted(data_class: DataClass) -> None:
    """Police-originated justice, identity and referral data flows to the DA."""
    decision = decide_one(POLICE, DA, data_class)
    assert decision.permit
    assert "interagency agreement" in decision.legal_basis


def test_da_hold_to_police_permitted() -> None:
    """The DA's justice data flows back to police under the interagency agreement."""
    assert decide_one(DA, POLICE, DataClass.JUSTICE).permit


def test_community_referral_data_to_provider_permitted() -> None:
    """A community referrer's identity data reaches the treatment provider."""
    assert decide_one(OUTREACH, PROVIDER, DataClass.IDENTITY).permit


def test_unknown_discloser_kind_denied_by_default() -> None:
    """A discloser of no justice/community kind and no Part 2 flag is still denied (R1)."""
    decision = decide_one(COMPLIANCE, DA, DataClass.IDENTITY)
    assert not decision.permit
    assert decision.reason.startswith("R1")


def test_decide_gives_one_decision_per_field_in_order() -> None:
    """decide answers each field, in the order given."""
    fields = [field(DataClass.JUSTICE, "a"), field(DataClass.CLINICAL, "b"),
              field(DataClass.IDENTITY, "c"), field(DataClass.COUNSELING_NOTES, "d")]
    decisions = BaselinePolicy().decide(ctx(POLICE, DA), fields)
    assert [d.permit for d in decisions] == [True, False, True, False]
