"""Canonical messages: what every agency format is mapped into, and what routing talks about.

Each field's data class (identity, justice, engagement...) is declared once, in
`mappings/canonical.yaml`; `hub.classification` checks that every field here has one.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class MessageType(StrEnum):
    DIVERSION_NOTICE = "diversion-notice"
    CHARGE_HOLD = "charge-hold"
    REFERRAL = "referral"
    REFERRAL_STATUS = "referral-status"


class Pathway(StrEnum):
    ARREST_DIVERSION = "arrest-diversion"
    SOCIAL_CONTACT = "social-contact-referral"
    COMMUNITY = "community-referral"


class Canonical(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Canonical):
    given_name: ShortText
    family_name: ShortText
    date_of_birth: date
    state_id: ShortText | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None


class Contact(Canonical):
    phone: ShortText | None = None
    address: Text | None = None


class Charge(Canonical):
    statute: ShortText | None = None  # some exchanges name the offence but not the statute
    description: Text


class Incident(Canonical):
    report_number: ShortText
    occurred_at: AwareDatetime
    location: Text | None = None
    officer: ShortText
    charges: list[Charge] = Field(default_factory=list, max_length=50)


class DiversionNotice(Canonical):
    """A police RMS (or a community referrer) tells the hub a person was diverted to LEAD."""

    pathway: Pathway
    referred_at: AwareDatetime
    person: Person
    contact: Contact | None = None
    incident: Incident | None = None
    referral_reason: Text | None = None


class HoldStatus(StrEnum):
    REQUESTED = "requested"
    HELD = "held"
    DECLINED = "declined"
    FILED = "filed"
    RELEASED = "released"
    FINAL_DISPOSITION = "final-disposition"  # the case is over; ends 2.35 irrevocability


class ChargeHold(Canonical):
    """The DA holds (or declines, files, releases) charges while the person engages."""

    case_ref: ShortText
    status: HoldStatus
    decided_at: AwareDatetime
    hold_deadline: date | None = None
    conditions: list[Text] = Field(default_factory=list, max_length=20)
    charges: list[Charge] = Field(default_factory=list, max_length=50)
    prosecutor: ShortText | None = None


class ReferralStatusCode(StrEnum):
    ACCEPTED = "accepted"
    INTAKE_DONE = "intake-done"
    PLAN_PRESENTED = "plan-presented"
    ENGAGED = "engaged"
    EXITED = "exited"
    DECLINED = "declined"


class ReferralStatus(Canonical):
    """A treatment provider reports where a referral stands."""

    case_ref: ShortText
    status: ReferralStatusCode
    occurred_at: AwareDatetime
    exit_reason: Text | None = None
    plan_summary: Text | None = None
    diagnoses: list[ShortText] = Field(default_factory=list, max_length=20)
    counseling_note: Text | None = None


class Referral(Canonical):
    """What a treatment provider receives for a diverted person (rendered as FHIR R4)."""

    case_ref: ShortText
    pathway: Pathway
    referred_at: AwareDatetime
    referring_agency: ShortText
    person: Person
    contact: Contact | None = None
    referral_reason: Text | None = None


MODELS: dict[MessageType, type[Canonical]] = {
    MessageType.DIVERSION_NOTICE: DiversionNotice,
    MessageType.CHARGE_HOLD: ChargeHold,
    MessageType.REFERRAL: Referral,
    MessageType.REFERRAL_STATUS: ReferralStatus,
}
