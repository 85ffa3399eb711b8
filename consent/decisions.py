"""The interface the hub's delivery step asks: for each field, may it go to this recipient now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str
    legal_basis: str
    consent_ref: str | None = None
    scope: str = ""  # for a permit under a consent: what that consent allows, in words


class DisclosurePolicy(Protocol):
    def decide(self, ctx: DisclosureContext, fields: list[FieldValue]) -> list[Decision]:
        """One decision per field, in the same order. Must deny when unsure."""
        ...
