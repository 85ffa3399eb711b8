"""What the decision engine knows of a consent or a court order: plain, immutable values.

The registry turns FHIR `Consent` resources (and court orders entered by a compliance
officer) into these; the engine never sees FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.classification import DataClass


class ConsentKind(StrEnum):
    GENERAL = "general"  # 42 CFR 2.31
    TPO = "tpo"  # single consent for treatment, payment and health care operations, 2.33(b)
    CRIMINAL_JUSTICE = "criminal-justice"  # 2.35
    COURT_ORDER = "court-order"  # Subpart E, entered by a compliance officer (R8)


TPO_PURPOSES = frozenset({"TREAT", "HPAYMT", "HOPERAT"})
MONITORING_CLASSES = frozenset({DataClass.REFERRAL, DataClass.ENGAGEMENT})
FINAL_DISPOSITION = "final-disposition"


@dataclass(frozen=True)
class Consent:
    """One version of a consent (or court order) as registered."""

    id: str
    version: int
    kind: ConsentKind
    site: str
    participant_id: str
    disclosers: frozenset[str]  # agency ids that may disclose
    recipients: frozenset[str]  # agency ids; empty only for a TPO consent's general designation
    purposes: frozenset[str]
    classes: frozenset[DataClass]
    valid_from: datetime
    valid_until: datetime | None  # None when the consent ends on an event instead
    signed_at: datetime
    denied_classes: frozenset[DataClass] = frozenset()  # nested deny provisions
    expiry_event: str | None = None
    ended_at: datetime | None = None  # when the expiry event happened, once recorded
    revoked_at: datetime | None = None
    revocable_after: datetime | None = None  # 2.35: irrevocable until this time...
    revocable_after_event: str | None = None  # ...or this event (final disposition)
    case_ref: str | None = None  # the case it was given for; None: all the person's cases

    @property
    def reference(self) -> str:
        """A court order is never presented as a Consent: it has a reference of its own."""
        kind = "CourtOrder" if self.kind == ConsentKind.COURT_ORDER else "Consent"
        return f"{kind}/{self.id}/_history/{self.version}"

