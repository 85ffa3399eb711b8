"""Deny-by-default policy used until consents can be registered (see the consent engine issue).

Information that originates in a Part 2 program (a treatment provider) never leaves for anyone
else: no consent can be on file yet, so 42 CFR 2.13/2.31 forbid it. Justice information from
police and the DA flows along the site's routing rules under the LEAD interagency agreement.
Clinical classes never reach police or the DA, whatever else is decided (42 CFR 2.12(d), 2.35).
"""

from __future__ import annotations

from hub.classification import DataClass, FieldValue

from consent.decisions import Decision, DisclosureContext

JUSTICE_KINDS = frozenset({"police", "prosecutor"})
NEVER_TO_JUSTICE = frozenset({DataClass.TREATMENT, DataClass.CLINICAL, DataClass.COUNSELING_NOTES})

NO_CONSENT = Decision(
    permit=False,
    reason="R1: Part 2 record and no consent on file naming this recipient; deny by default",
    legal_basis="none (42 CFR 2.13, 2.31)",
)
CLINICAL_TO_JUSTICE = Decision(
    permit=False,
    reason="R5/R6: treatment and clinical detail never go to police or the DA",
    legal_basis="none (42 CFR 2.12(d), 2.35)",
)
COUNSELING = Decision(
    permit=False,
    reason="R7: counselling notes need their own consent; none can be on file",
    legal_basis="none (42 CFR 2.31(b))",
)
JUSTICE_INFO = Decision(
    permit=True,
    reason="criminal-justice information routed under the site's LEAD interagency agreement",
    legal_basis="LEAD interagency agreement (not a Part 2 record at origin)",
)


class BaselinePolicy:
    def decide(self, ctx: DisclosureContext, fields: list[FieldValue]) -> list[Decision]:
        return [self._one(ctx, f) for f in fields]

    @staticmethod
    def _one(ctx: DisclosureContext, field: FieldValue) -> Decision:
        if field.data_class == DataClass.COUNSELING_NOTES:
            return COUNSELING
        if ctx.recipient.kind in JUSTICE_KINDS and field.data_class in NEVER_TO_JUSTICE:
            return CLINICAL_TO_JUSTICE
        if ctx.discloser.part2_program and ctx.recipient.agency != ctx.discloser.agency:
            return NO_CONSENT
        if ctx.discloser.kind in JUSTICE_KINDS | {"community"}:
            return JUSTICE_INFO
        return NO_CONSENT
