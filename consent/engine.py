"""The decision: may this field go to this recipient, for this purpose, now? Pure and fast.

Deny by default. Information that originates outside a Part 2 program (police, the DA,
community referrers) flows under the site's LEAD agreement, except that clinical classes
never reach police or the DA. Anything that originates in a Part 2 program needs a consent
(or court order) that is in force at this instant and covers the discloser, the recipient,
the purpose and the field's data class. A denial names the rule and the nearest consent's
reason, so a compliance officer can see why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consent.decisions import BasisKind, Decision, DisclosureContext
from consent.model import MONITORING_CLASSES, TPO_PURPOSES, Consent, ConsentKind
from hub.classification import DataClass, FieldValue

JUSTICE_KINDS = frozenset({"police", "prosecutor"})
NEVER_TO_JUSTICE = frozenset({DataClass.TREATMENT, DataClass.CLINICAL, DataClass.COUNSELING_NOTES})

LEGAL_BASIS = {
    ConsentKind.GENERAL: "consent (42 CFR 2.31)",
    ConsentKind.TPO: "single TPO consent (42 CFR 2.31, 2.33(b))",
    ConsentKind.CRIMINAL_JUSTICE: "criminal-justice consent (42 CFR 2.35)",
    ConsentKind.COURT_ORDER: "court order (42 CFR Part 2 Subpart E)",
}

COUNSELING_NOTES = Decision(False, "R7: counselling notes never go to police or the DA",
                            "none (42 CFR 2.12(d), 2.31(b))")
CLINICAL_TO_JUSTICE = Decision(False, "R5/R6: treatment and clinical detail never go to police "
                               "or the DA, whatever a consent says", "none (42 CFR 2.12(d), 2.35)")
NOT_PART2 = Decision(True, "criminal-justice information routed under the site's LEAD "
                     "interagency agreement", "LEAD interagency agreement (not a Part 2 record)",
                     basis_kind=BasisKind.LEAD_AGREEMENT)

Check = Callable[[Consent, DisclosureContext, DataClass], str | None]


def _in_force(c: Consent, ctx: DisclosureContext, _cls: DataClass) -> str | None:
    at = ctx.at
    if at < c.valid_from:
        return f"R3: {c.reference} is not in force until {c.valid_from.isoformat()}"
    if c.revoked_at is not None and at >= c.revoked_at:
        return f"R3: {c.reference} was revoked at {c.revoked_at.isoformat()}"
    if c.valid_until is not None and at >= c.valid_until:
        return f"R3: {c.reference} expired at {c.valid_until.isoformat()}"
    if c.ended_at is not None and at >= c.ended_at:
        return f"R3: {c.reference} ended with '{c.expiry_event}' at {c.ended_at.isoformat()}"
    return None


def _discloser(c: Consent, ctx: DisclosureContext, _cls: DataClass) -> str | None:
    if ctx.discloser.agency not in c.disclosers:
        return f"R2: {c.reference} does not let {ctx.discloser.agency} disclose"
    return None


def _recipient(c: Consent, ctx: DisclosureContext, _cls: DataClass) -> str | None:
    recipient = ctx.recipient
    if recipient.kind in JUSTICE_KINDS and c.kind == ConsentKind.TPO:
        return f"R5: {c.reference} ({c.kind}) cannot authorise disclosure to the justice system"
    if recipient.kind not in JUSTICE_KINDS and c.kind == ConsentKind.CRIMINAL_JUSTICE:
        return f"R5: {c.reference} is a criminal-justice consent; {recipient.agency} is not a " \
               "justice agency"
    if c.kind == ConsentKind.TPO:
        if not recipient.tpo_covered_entity:
            return (f"R9: {c.reference} is a TPO consent and {recipient.agency} is not a "
                    "covered entity receiving for treatment, payment or operations")
        if c.recipients and recipient.agency not in c.recipients:
            return f"R2: {c.reference} does not name {recipient.agency} as a recipient"
        return None
    if recipient.agency not in c.recipients:
        return f"R2: {c.reference} does not name {recipient.agency} as a recipient"
    return None


def _purpose(c: Consent, ctx: DisclosureContext, _cls: DataClass) -> str | None:
    if ctx.purpose not in c.purposes:
        return f"R2: {c.reference} does not permit the purpose {ctx.purpose}"
    if c.kind == ConsentKind.TPO and ctx.purpose not in TPO_PURPOSES:
        return f"R2: {c.reference} is a TPO consent; {ctx.purpose} is not treatment, payment " \
               "or operations"
    return None


def _data_class(c: Consent, ctx: DisclosureContext, cls: DataClass) -> str | None:
    if cls in c.denied_classes or cls not in c.classes:
        return f"R2: {c.reference} does not grant the data class {cls}"
    if cls == DataClass.COUNSELING_NOTES and c.classes != {DataClass.COUNSELING_NOTES}:
        return f"R7: counselling notes need a consent of their own; {c.reference} covers more"
    if ctx.recipient.kind in JUSTICE_KINDS and c.kind != ConsentKind.COURT_ORDER \
            and cls not in MONITORING_CLASSES:
        return "R5: only monitoring classes (referral, engagement) go to the justice system"
    return None


def never_released(kind: ConsentKind, recipient_kind: str,
                   classes: frozenset[DataClass] | set[DataClass]) -> set[DataClass]:
    """Classes a consent (or court order) of this kind grants to this recipient that the gate
    will never let out to it (R5, R6): registration refuses them rather than let a reader
    believe they were authorised."""
    if recipient_kind not in JUSTICE_KINDS:
        return set()
    blocked = set(classes) & NEVER_TO_JUSTICE
    if kind != ConsentKind.COURT_ORDER:
        blocked |= set(classes) - MONITORING_CLASSES
    return blocked


def unreleasable_problem(kind: ConsentKind, grants: dict[str, set[DataClass]],
                         agency_kinds: dict[str, str]) -> str | None:
    """One sentence naming what can never reach whom, or None if every grant can take effect."""
    found = []
    for agency in sorted(grants):
        blocked = never_released(kind, agency_kinds.get(agency, ""), grants[agency])
        if blocked:
            found.append(f"{', '.join(sorted(blocked))} to {agency}")
    if not found:
        return None
    return (f"R5/R6: these grants can never take effect, the hub never discloses them to police "
            f"or the DA under a {kind}: {'; '.join(found)}; name only referral and engagement "
            "for them" + (" (treatment, clinical and counselling notes never go to them)"
                          if kind == ConsentKind.COURT_ORDER else ""))


CHECKS: tuple[Check, ...] = (_in_force, _discloser, _recipient, _purpose, _data_class)


def _evaluate(c: Consent, ctx: DisclosureContext, cls: DataClass) -> tuple[int, str | None]:
    """How many checks the consent passes in order, and the first reason it fails."""
    for passed, check in enumerate(CHECKS):
        reason = check(c, ctx, cls)
        if reason is not None:
            return passed, reason
    return len(CHECKS), None


def scope_of(c: Consent) -> str:
    """A consent's scope in one sentence, as 42 CFR 2.32 asks to accompany a disclosure."""
    ends = c.valid_until.isoformat() if c.valid_until else f"'{c.expiry_event}'"
    to = ", ".join(sorted(c.recipients)) or "covered entities for treatment, payment, operations"
    withheld = f" except {', '.join(sorted(c.denied_classes))}" if c.denied_classes else ""
    return (f"{', '.join(sorted(c.disclosers))} may disclose {', '.join(sorted(c.classes))}"
            f"{withheld} to {to} for {', '.join(sorted(c.purposes))} until {ends}")


def _latest(consents: list[Consent]) -> list[Consent]:
    """Only the newest version of each consent speaks; older versions are history."""
    newest: dict[str, Consent] = {}
    for c in consents:
        if c.id not in newest or c.version > newest[c.id].version:
            newest[c.id] = c
    return list(newest.values())


def decide_field(consents: Sequence[Consent], ctx: DisclosureContext, cls: DataClass) -> Decision:
    recipient = ctx.recipient
    if recipient.kind in JUSTICE_KINDS and cls == DataClass.COUNSELING_NOTES:
        return COUNSELING_NOTES
    if recipient.kind in JUSTICE_KINDS and cls in NEVER_TO_JUSTICE:
        return CLINICAL_TO_JUSTICE
    if not ctx.discloser.part2_program and cls != DataClass.COUNSELING_NOTES:
        return NOT_PART2
    # A consent given for one case (a 2.35 referral) speaks for that case only; one that
    # names the person speaks for all of their cases.
    mine = _latest([c for c in consents
                    if c.participant_id == ctx.participant_id and c.site == ctx.site
                    and c.case_ref in (None, ctx.case_ref)])
    if ctx.participant_id is None or not mine:
        return Decision(False, "R1: Part 2 record and no consent on file for this patient "
                        "(and this case); deny by default", "none (42 CFR 2.13, 2.31)")
    best: tuple[int, str] | None = None
    for c in sorted(mine, key=lambda c: (c.kind != ConsentKind.COURT_ORDER, c.id, -c.version)):
        passed, reason = _evaluate(c, ctx, cls)
        if reason is None:
            return Decision(True, f"permitted by {c.reference} ({c.kind})", LEGAL_BASIS[c.kind],
                            c.reference, scope_of(c),
                            BasisKind.COURT_ORDER if c.kind == ConsentKind.COURT_ORDER
                            else BasisKind.CONSENT)
        if best is None or passed > best[0]:
            best = (passed, reason)
    assert best is not None
    return Decision(False, best[1], "none: no consent in force covers this disclosure")


def decide(consents: Sequence[Consent], ctx: DisclosureContext,
           fields: Sequence[FieldValue]) -> list[Decision]:
    """One decision per field, in order. Fields of one class share one evaluation."""
    by_class: dict[DataClass, Decision] = {}
    out = []
    for f in fields:
        if f.data_class not in by_class:
            by_class[f.data_class] = decide_field(consents, ctx, f.data_class)
        out.append(by_class[f.data_class])
    return out

