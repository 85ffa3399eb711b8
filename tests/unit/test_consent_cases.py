"""consent.engine: named cases of the field-level disclosure decision against PART2.md R1-R9.

Each case is one row: the consents on file, the disclosure context, the field's data class,
whether it may go, and words the reason must contain. Permits must name the covering consent
(or none for information that is not a Part 2 record) and carry a legal basis.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest

from consent.decisions import Decision, DisclosureContext, Party
from consent.engine import decide, decide_field
from consent.model import FINAL_DISPOSITION, Consent, ConsentKind
from hub.classification import DataClass, FieldValue

SITE = "santa-fe"
P1 = "P-0001"
P2 = "P-0002"
MONITORING = "LEAD-CJ-MONITORING"
CHARGE = "LEAD-CHARGE-DECISION"

# The demo site's agencies (deploy/sites/santa-fe.yaml) ...
SFPD = Party("sfpd", "police", part2_program=False, tpo_covered_entity=False)
DA = Party("da", "prosecutor", part2_program=False, tpo_covered_entity=False)
PROVIDER = Party("provider", "treatment", part2_program=True, tpo_covered_entity=True)
OUTREACH = Party("outreach", "community", part2_program=False, tpo_covered_entity=False)
# ... and a few more a site may have.
CLINIC = Party("clinic", "treatment", part2_program=True, tpo_covered_entity=True)
HOSPITAL = Party("hospital", "treatment", part2_program=False, tpo_covered_entity=True)
CASEMGMT = Party("casemgmt", "community", part2_program=True, tpo_covered_entity=False)
# A prosecutor a site file wrongly flags as a covered entity (hub/site.py does not forbid it).
DA_FLAGGED_CE = Party("da", "prosecutor", part2_program=False, tpo_covered_entity=True)

SIGNED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
START = SIGNED
END = START + timedelta(days=90)
AT = START + timedelta(days=10)
SECOND = timedelta(seconds=1)

R = DataClass.REFERRAL
E = DataClass.ENGAGEMENT
TREATMENT = DataClass.TREATMENT
CLINICAL = DataClass.CLINICAL
NOTES = DataClass.COUNSELING_NOTES
IDENTITY = DataClass.IDENTITY
CONTACT = DataClass.CONTACT
JUSTICE = DataClass.JUSTICE


def cj(**kw: object) -> Consent:
    """A 2.35 criminal-justice consent: provider may tell the DA enrolment and engagement."""
    base = Consent(
        id="cj-1", version=1, kind=ConsentKind.CRIMINAL_JUSTICE, site=SITE, participant_id=P1,
        disclosers=frozenset({"provider"}), recipients=frozenset({"da"}),
        purposes=frozenset({MONITORING}), classes=frozenset({R, E}),
        valid_from=START, valid_until=END, signed_at=SIGNED,
        revocable_after=END, revocable_after_event=FINAL_DISPOSITION,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def general(**kw: object) -> Consent:
    """A 2.31 general consent: provider may tell outreach about the referral for treatment."""
    base = Consent(
        id="gen-1", version=1, kind=ConsentKind.GENERAL, site=SITE, participant_id=P1,
        disclosers=frozenset({"provider"}), recipients=frozenset({"outreach"}),
        purposes=frozenset({"TREAT"}), classes=frozenset({R, E}),
        valid_from=START, valid_until=END, signed_at=SIGNED,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def tpo(**kw: object) -> Consent:
    """A 2.33(b) single TPO consent: provider may share treatment detail with the clinic."""
    base = Consent(
        id="tpo-1", version=1, kind=ConsentKind.TPO, site=SITE, participant_id=P1,
        disclosers=frozenset({"provider"}), recipients=frozenset({"clinic"}),
        purposes=frozenset({"TREAT", "HPAYMT", "HOPERAT"}),
        classes=frozenset({R, E, TREATMENT, CLINICAL}),
        valid_from=START, valid_until=END, signed_at=SIGNED,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def order(**kw: object) -> Consent:
    """A Subpart E court order entered by a compliance officer: provider to the DA, 30 days."""
    base = Consent(
        id="order-1", version=1, kind=ConsentKind.COURT_ORDER, site=SITE, participant_id=P1,
        disclosers=frozenset({"provider"}), recipients=frozenset({"da"}),
        purposes=frozenset({CHARGE}), classes=frozenset({R, E, IDENTITY}),
        valid_from=START, valid_until=START + timedelta(days=30), signed_at=SIGNED,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ctx(recipient: Party = DA, discloser: Party = PROVIDER, purpose: str = MONITORING,
        at: datetime = AT, participant: str | None = P1, site: str = SITE) -> DisclosureContext:
    """A disclosure of a referral-status message; by default provider -> DA for monitoring."""
    return DisclosureContext(site=site, participant_id=participant, discloser=discloser,
                             recipient=recipient, purpose=purpose, message_type="referral-status",
                             at=at)


def field(data_class: DataClass, path: str = "some.field") -> FieldValue:
    return FieldValue(path, path, data_class, "value")


class Case(NamedTuple):
    name: str
    consents: list[Consent]
    ctx: DisclosureContext
    field_class: DataClass
    expect_permit: bool
    reason_contains: tuple[str, ...]  # every one must appear in Decision.reason
    expect_ref: str | None = None  # a permit's covering consent reference (None: not Part 2)
    via_decide: bool = False  # run through decide() on a multi-field message instead


REVOKED_A = cj(id="a-revoked", revoked_at=AT - timedelta(days=1))
COVERING_B = general(id="b-covering", recipients=frozenset({"da"}),
                     purposes=frozenset({MONITORING}))
V1_WIDE = cj(id="cj-v", version=1, classes=frozenset({R, E}))
V2_NARROW = cj(id="cj-v", version=2, classes=frozenset({R}))
V1_WRONG_RECIPIENT = cj(id="cj-w", version=1, recipients=frozenset({"sfpd"}))
V2_FIXED = cj(id="cj-w", version=2, recipients=frozenset({"da"}))
WRONG_PURPOSE = cj(id="b-purpose", purposes=frozenset({CHARGE}))

CASES: list[Case] = [
    # --- R1: deny by default; only this patient's consents at this site count
    Case("r1_no_consent_at_all_denied", [], ctx(), R, False, ("R1",)),
    Case("r1_consent_for_another_patient_denied", [cj(participant_id=P2)], ctx(), R, False,
         ("R1",)),
    Case("r1_consent_at_another_site_denied", [cj(site="albuquerque")], ctx(), R, False, ("R1",)),
    Case("r1_participant_unknown_part2_origin_denied", [cj()], ctx(participant=None), R, False,
         ("R1",)),
    # --- the baseline permit and validity window (R3)
    Case("cj_referral_to_da_permitted", [cj()], ctx(), R, True, ("cj-1",),
         cj().reference),
    Case("cj_engagement_to_da_permitted", [cj()], ctx(), E, True, (), cj().reference),
    Case("cj_engagement_to_da_permitted_via_decide", [cj()], ctx(), E, True, (), cj().reference,
         via_decide=True),
    Case("r3_permitted_at_the_valid_from_instant", [cj()], ctx(at=START), R, True, (),
         cj().reference),
    Case("r3_not_yet_valid_one_second_before_valid_from_denied", [cj()],
         ctx(at=START - SECOND), R, False, ("R3", "not in force", cj().reference)),
    Case("r3_permitted_one_second_before_valid_until", [cj()], ctx(at=END - SECOND), R, True, (),
         cj().reference),
    Case("r3_expired_at_the_valid_until_instant_denied", [cj()], ctx(at=END), R, False,
         ("R3", "expired", cj().reference)),
    Case("r3_expired_long_after_valid_until_denied", [cj()], ctx(at=END + timedelta(days=200)),
         R, False, ("R3", "expired")),
    Case("r3_revoked_one_second_later_still_permitted", [cj(revoked_at=AT + SECOND)], ctx(), R,
         True, (), cj().reference),
    Case("r3_revoked_at_this_instant_denied", [cj(revoked_at=AT)], ctx(), R, False,
         ("R3", "revoked", cj().reference)),
    Case("r3_revoked_a_day_before_denied", [cj(revoked_at=AT - timedelta(days=1))], ctx(), R,
         False, ("R3", "revoked", cj().reference)),
    Case("r3_ended_by_expiry_event_denied",
         [cj(valid_until=None, expiry_event=FINAL_DISPOSITION, ended_at=AT - timedelta(hours=1))],
         ctx(), R, False, ("R3", FINAL_DISPOSITION, cj().reference)),
    Case("r3_expiry_event_one_second_later_still_permitted",
         [cj(valid_until=None, expiry_event=FINAL_DISPOSITION, ended_at=AT + SECOND)],
         ctx(), R, True, (), cj().reference),
    Case("r3_expiry_event_not_yet_happened_permitted_long_after_signing",
         [cj(valid_until=None, expiry_event=FINAL_DISPOSITION)],
         ctx(at=START + timedelta(days=400)), R, True, (), cj().reference),
    # --- R2: discloser, recipient, purpose, class must each be named
    Case("r2_wrong_recipient_organisation_denied", [cj()], ctx(recipient=SFPD), R, False,
         ("R2", "sfpd")),
    Case("r2_wrong_discloser_denied", [cj()], ctx(discloser=CLINIC), R, False, ("R2", "clinic")),
    Case("r2_wrong_purpose_denied", [cj()], ctx(purpose=CHARGE), R, False, ("R2", CHARGE)),
    Case("r2_class_not_granted_denied", [cj(classes=frozenset({R}))], ctx(), E, False,
         ("R2", "engagement")),
    Case("r2_class_granted_but_in_nested_deny_denied",
         [general(classes=frozenset({R, E, CONTACT}), denied_classes=frozenset({CONTACT}))],
         ctx(recipient=OUTREACH, purpose="TREAT"), CONTACT, False, ("R2", "contact")),
    Case("r2_nested_deny_leaves_other_granted_classes_permitted",
         [general(classes=frozenset({R, E, CONTACT}), denied_classes=frozenset({CONTACT}))],
         ctx(recipient=OUTREACH, purpose="TREAT"), R, True, (), general().reference),
    # --- R5: 2.35 criminal-justice consents
    Case("r5_cj_within_its_duration_permitted", [cj()], ctx(at=START + timedelta(days=89)), E,
         True, (), cj().reference),
    Case("r5_cj_past_its_duration_denied", [cj()], ctx(at=END + SECOND), E, False,
         ("R3", "expired")),
    Case("r5_cj_revocation_recorded_inside_irrevocable_period_still_denied_conservatively",
         [cj(revoked_at=AT - timedelta(days=1), revocable_after=END)], ctx(), R, False,
         ("revoked",)),
    Case("r5_justice_treatment_under_cj_granting_it_denied",
         [cj(classes=frozenset({R, E, TREATMENT}))], ctx(), TREATMENT, False, ("R5",)),
    Case("r5_justice_treatment_denied_via_decide",
         [cj(classes=frozenset({R, E, TREATMENT}))], ctx(), TREATMENT, False, ("R5",),
         via_decide=True),
    Case("r5_justice_clinical_under_general_granting_it_denied",
         [general(recipients=frozenset({"da"}), purposes=frozenset({MONITORING}),
                  classes=frozenset({R, CLINICAL}))], ctx(), CLINICAL, False, ("R5",)),
    Case("r5_police_clinical_under_cj_granting_it_denied",
         [cj(recipients=frozenset({"sfpd"}), classes=frozenset({R, CLINICAL}))],
         ctx(recipient=SFPD), CLINICAL, False, ("R5",)),
    Case("r7_justice_counseling_notes_under_their_own_consent_denied",
         [general(recipients=frozenset({"da"}), purposes=frozenset({MONITORING}),
                  classes=frozenset({NOTES}))], ctx(), NOTES, False, ("R7",)),
    Case("r5_justice_monitoring_class_under_general_consent_naming_them_permitted",
         [general(recipients=frozenset({"da"}), purposes=frozenset({MONITORING}))], ctx(), E,
         True, (), general().reference),
    Case("r5_justice_identity_under_general_consent_granting_it_denied",
         [general(recipients=frozenset({"da"}), purposes=frozenset({MONITORING}),
                  classes=frozenset({R, IDENTITY}))], ctx(), IDENTITY, False,
         ("R5", "monitoring")),
    Case("r5_cj_identity_beyond_monitoring_classes_denied",
         [cj(classes=frozenset({R, E, IDENTITY}))], ctx(), IDENTITY, False, ("R5",)),
    Case("r5_justice_under_tpo_consent_naming_them_denied",
         [tpo(recipients=frozenset({"da"}), classes=frozenset({R}))], ctx(purpose="TREAT"), R,
         False, (tpo().reference,)),
    Case("r5_justice_under_tpo_general_designation_denied",
         [tpo(recipients=frozenset(), classes=frozenset({R}))], ctx(purpose="TREAT"), R, False,
         (tpo().reference,)),
    # A justice agency that a site file wrongly flags as a covered entity still gets nothing
    # under a TPO consent (hub/site.py does not forbid the flag).
    Case("r5_tpo_general_designation_to_prosecutor_flagged_covered_entity_denied",
         [tpo(recipients=frozenset(), classes=frozenset({R}))],
         ctx(recipient=DA_FLAGGED_CE, purpose="TREAT"), R, False, ("R5",)),
    # --- R7: counselling notes need a consent of their own
    Case("r7_counseling_notes_under_general_consent_covering_more_denied",
         [general(recipients=frozenset({"clinic"}), classes=frozenset({TREATMENT, NOTES}))],
         ctx(recipient=CLINIC, purpose="TREAT"), NOTES, False, ("R7",)),
    Case("r7_counseling_notes_under_tpo_consent_covering_more_denied",
         [tpo(classes=frozenset({TREATMENT, NOTES}))], ctx(recipient=CLINIC, purpose="TREAT"),
         NOTES, False, ("R7",)),
    Case("r7_counseling_notes_under_their_own_consent_to_clinic_permitted",
         [general(id="notes-1", recipients=frozenset({"clinic"}), classes=frozenset({NOTES}))],
         ctx(recipient=CLINIC, purpose="TREAT"), NOTES, True, (),
         general(id="notes-1").reference),
    # --- R9 and 2.33(b): TPO consents
    Case("r9_tpo_to_named_covered_entity_for_treat_permitted", [tpo()],
         ctx(recipient=CLINIC, purpose="TREAT"), TREATMENT, True, (), tpo().reference),
    Case("r9_tpo_to_named_covered_entity_for_hoperat_permitted", [tpo()],
         ctx(recipient=CLINIC, purpose="HOPERAT"), CLINICAL, True, (), tpo().reference),
    Case("r9_tpo_to_named_non_covered_entity_denied", [tpo(recipients=frozenset({"casemgmt"}))],
         ctx(recipient=CASEMGMT, purpose="TREAT"), TREATMENT, False, ("R9", "casemgmt")),
    Case("r9_tpo_general_designation_to_covered_entity_permitted",
         [tpo(recipients=frozenset())], ctx(recipient=HOSPITAL, purpose="TREAT"), TREATMENT,
         True, (), tpo().reference),
    Case("r9_tpo_general_designation_to_non_covered_entity_denied",
         [tpo(recipients=frozenset())], ctx(recipient=OUTREACH, purpose="TREAT"), R, False,
         ("R9", "outreach")),
    Case("r9_tpo_naming_one_covered_entity_denies_another", [tpo()],
         ctx(recipient=HOSPITAL, purpose="TREAT"), TREATMENT, False, ("R2", "hospital")),
    Case("r9_tpo_consent_for_non_tpo_purpose_denied",
         [tpo(purposes=frozenset({"TREAT", MONITORING}))], ctx(recipient=CLINIC), R, False,
         ("R2", MONITORING)),
    # --- R8: court orders, limited to what they name; hard rules come first
    Case("r8_court_order_within_its_period_permitted", [order()], ctx(purpose=CHARGE), E, True,
         (), order().reference),
    Case("r8_court_order_may_name_identity_for_the_da_permitted", [order()], ctx(purpose=CHARGE),
         IDENTITY, True, (), order().reference),
    Case("r8_court_order_before_its_period_denied", [order()],
         ctx(purpose=CHARGE, at=START - SECOND), E, False, ("R3", order().reference)),
    Case("r8_court_order_after_its_period_denied", [order()],
         ctx(purpose=CHARGE, at=START + timedelta(days=30)), E, False,
         ("R3", order().reference)),
    Case("r8_court_order_for_class_it_does_not_name_denied", [order()], ctx(purpose=CHARGE),
         CONTACT, False, ("R2", "contact")),
    Case("r8_court_order_for_recipient_it_does_not_name_denied", [order()],
         ctx(recipient=SFPD, purpose=CHARGE), E, False, ("R2", "sfpd")),
    Case("r8_court_order_cannot_give_counseling_notes_to_police",
         [order(recipients=frozenset({"sfpd"}), classes=frozenset({NOTES}))],
         ctx(recipient=SFPD, purpose=CHARGE), NOTES, False, ("R7",)),
    Case("r8_court_order_cannot_give_clinical_to_police",
         [order(recipients=frozenset({"sfpd"}), classes=frozenset({CLINICAL, TREATMENT}))],
         ctx(recipient=SFPD, purpose=CHARGE), CLINICAL, False, ("R5",)),
    Case("r8_court_order_for_notes_and_more_to_clinic_denied",
         [order(recipients=frozenset({"clinic"}), purposes=frozenset({"TREAT"}),
                classes=frozenset({NOTES, CLINICAL}))],
         ctx(recipient=CLINIC, purpose="TREAT"), NOTES, False, ("R7",)),
    # --- information that is not a Part 2 record at origin
    Case("not_part2_police_to_da_justice_permitted_without_consent", [],
         ctx(discloser=SFPD, recipient=DA, purpose=CHARGE), JUSTICE, True, (), None),
    Case("not_part2_police_to_da_justice_permitted_via_decide", [],
         ctx(discloser=SFPD, recipient=DA, purpose=CHARGE), JUSTICE, True, (), None,
         via_decide=True),
    Case("not_part2_outreach_to_provider_referral_permitted_without_consent", [],
         ctx(discloser=OUTREACH, recipient=PROVIDER, purpose="TREAT"), R, True, (), None),
    Case("not_part2_police_to_da_clinical_denied", [],
         ctx(discloser=SFPD, recipient=DA, purpose=CHARGE), CLINICAL, False, ("R5",)),
    Case("not_part2_police_to_da_counseling_notes_denied", [],
         ctx(discloser=SFPD, recipient=DA, purpose=CHARGE), NOTES, False, ("R7",)),
    Case("not_part2_outreach_counseling_notes_to_provider_denied_without_own_consent", [],
         ctx(discloser=OUTREACH, recipient=PROVIDER, purpose="TREAT"), NOTES, False, ("R1",)),
    Case("r5_criminal_justice_consent_naming_a_non_justice_agency_denied",
         [cj(recipients=frozenset({"outreach"}))],
         ctx(recipient=OUTREACH), E, False, ("R5", "not a justice agency")),
    # --- several consents and versions
    Case("revoked_one_and_covering_other_permitted_by_the_covering_one",
         [REVOKED_A, COVERING_B], ctx(), E, True, ("b-covering",), COVERING_B.reference),
    Case("covering_one_listed_first_still_named", [COVERING_B, REVOKED_A], ctx(), E, True, (),
         COVERING_B.reference),
    Case("newest_version_narrower_than_older_wins", [V1_WIDE, V2_NARROW], ctx(), E, False,
         ("R2", V2_NARROW.reference)),
    Case("newest_version_wins_whatever_the_list_order", [V2_NARROW, V1_WIDE], ctx(), E, False,
         ("R2", V2_NARROW.reference)),
    Case("newest_version_still_grants_what_it_names", [V1_WIDE, V2_NARROW], ctx(), R, True, (),
         V2_NARROW.reference),
    Case("newest_version_fixes_recipient_permitted", [V2_FIXED, V1_WRONG_RECIPIENT], ctx(), R,
         True, (), V2_FIXED.reference),
    Case("newest_version_revoked_older_unrevoked_denied",
         [cj(id="cj-r", version=1), cj(id="cj-r", version=2, revoked_at=AT - SECOND)], ctx(), R,
         False, ("revoked", "Consent/cj-r/_history/2")),
    Case("denial_reason_names_the_revoked_consent", [REVOKED_A], ctx(), R, False,
         (REVOKED_A.reference, "revoked")),
    Case("denial_reason_names_the_nearest_of_several_consents", [REVOKED_A, WRONG_PURPOSE],
         ctx(), R, False, (WRONG_PURPOSE.reference, MONITORING)),
]


def _run(case: Case) -> Decision:
    if not case.via_decide:
        return decide_field(case.consents, case.ctx, case.field_class)
    fields = [field(DataClass.IDENTITY, "person.id"), field(case.field_class, "target"),
              field(DataClass.CLINICAL, "notes")]
    decisions = decide(case.consents, case.ctx, fields)
    assert len(decisions) == 3
    return decisions[1]


def test_case_table_is_large_and_names_are_unique() -> None:
    """The table holds at least 45 cases and no two share a name."""
    names = [c.name for c in CASES]
    assert len(names) >= 45
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_consent_case(case: Case) -> None:
    """Each named case gets the expected permit/deny, reason words, consent ref, basis and scope."""
    decision = _run(case)
    assert decision.permit is case.expect_permit, decision.reason
    for words in case.reason_contains:
        assert words in decision.reason, f"{words!r} not in reason {decision.reason!r}"
    assert decision.legal_basis.strip()
    if case.expect_permit:
        assert decision.consent_ref == case.expect_ref
        if case.expect_ref is not None:  # R4: a permit under a consent carries its scope
            assert case.ctx.recipient.agency in decision.scope or "covered entities" in \
                decision.scope, decision.scope
    else:
        assert decision.consent_ref is None


def test_permit_legal_basis_names_the_consent_kind() -> None:
    """A permit's legal basis cites the regulation of the covering consent's kind."""
    assert "2.35" in decide_field([cj()], ctx(), R).legal_basis
    assert "2.31" in decide_field([general()], ctx(recipient=OUTREACH, purpose="TREAT"),
                                  R).legal_basis
    assert "2.33" in decide_field([tpo()], ctx(recipient=CLINIC, purpose="TREAT"),
                                  TREATMENT).legal_basis
    assert "Subpart E" in decide_field([order()], ctx(purpose=CHARGE), R).legal_basis


def test_decide_returns_one_decision_per_field_in_order() -> None:
    """decide() answers a status update field by field, in order, clinical withheld from the DA."""
    fields = [field(R, "case_ref"), field(E, "status"), field(E, "occurred_at"),
              field(TREATMENT, "plan_summary")]
    decisions = decide([cj()], ctx(), fields)
    assert [d.permit for d in decisions] == [True, True, True, False]
    assert [d.consent_ref for d in decisions] == [cj().reference] * 3 + [None]
    assert decisions[3].reason.startswith("R5")


def test_decide_keeps_order_for_interleaved_classes() -> None:
    """decide() keeps field order when classes interleave and repeat."""
    classes = [TREATMENT, R, IDENTITY, E, TREATMENT, R]
    decisions = decide([cj()], ctx(), [field(c, f"f{i}") for i, c in enumerate(classes)])
    assert [d.permit for d in decisions] == [False, True, False, True, False, True]
    for cls, d in zip(classes, decisions, strict=True):
        assert d == decide_field([cj()], ctx(), cls)


def test_decide_with_no_fields_returns_nothing() -> None:
    """decide() on a message without fields returns an empty list."""
    assert decide([cj()], ctx(), []) == []
