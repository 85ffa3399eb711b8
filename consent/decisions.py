"""The interface the hub's delivery step asks: for each field, may it go to this recipient now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from hub.classification import FieldValue


@dataclass(frozen=True)
class Party:
    agency: str
    kind: str  # police | prosecutor | treatment | community | compliance
    part2_program: bool
    tpo_covered_entity: bool


@dataclass(frozen=True)
class DisclosureContext:
    site: str
    participant_id: str | None
    discloser: Party  # the agency the information came from
    recipient: Party
    purpose: str
    message_type: str
    at: datetime
    case_ref: str | None = None  # the case the disclosed message is about


class BasisKind(StrEnum):
    """What kind of authority a decision rests on; the accounting names it in words."""

    CONSENT = "consent"  # a written consent (42 CFR 2.31, 2.33(b), 2.35)
    COURT_ORDER = "court-order"  # an authorising court order (42 CFR Part 2 Subpart E)
    LEAD_AGREEMENT = "lead-agreement"  # not a Part 2 record: the site's interagency agreement
    NONE = "none"  # nothing authorises it: the field is withheld


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str
    legal_basis: str
    consent_ref: str | None = None
    scope: str = ""  # for a permit under a consent: what that consent allows, in words
    basis_kind: BasisKind = BasisKind.NONE


class DisclosurePolicy(Protocol):
    def decide(self, ctx: DisclosureContext, fields: list[FieldValue]) -> list[Decision]:
        """One decision per field, in the same order. Must deny when unsure."""
        ...
