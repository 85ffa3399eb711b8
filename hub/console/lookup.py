"""Finding a participant: by case (the diversion notice's message id) or by name and birth date.

The hub keeps no names, only keyed hashes: the search computes them as ingest does
(hub/identity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import select

from hub import identity
from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.tables import Participant


def dob_name_hmac(hub: Hub, family_name: str, given_name: str, date_of_birth: date) -> str:
    """The keyed hash ingest stores in participant.dob_name_hmac."""
    return identity.dob_name_hmac(hub.hasher, hub.site.site, family_name, given_name,
                                  date_of_birth.isoformat())


@dataclass(frozen=True)
class Found:
    participant_id: str
    created_at: datetime


@dataclass(frozen=True)
class CaseLookup:
    known: bool  # a diversion notice with this id exists at this site
    participant_id: str | None  # None until ingest has tied it to a participant


def by_case(hub: Hub, case_id: str) -> CaseLookup:
    case = hub.store.case(hub.site.site, case_id.strip())
    return CaseLookup(case is not None, case.participant_id if case else None)


def by_name_and_birth_date(hub: Hub, family_name: str, given_name: str,
                           date_of_birth: date) -> list[Found]:
    """Every participant with this name and birth date (several, if their state ids differ)."""
    digest = dob_name_hmac(hub, family_name, given_name, date_of_birth)
    with unit_of_work(hub.engine) as s:
        rows = s.exec(select(Participant).where(Participant.site == hub.site.site,
                                                Participant.dob_name_hmac == digest)
                      .order_by(Participant.created_at)).all()  # type: ignore[arg-type]
    return [Found(r.id, r.created_at) for r in rows]


def exists(hub: Hub, participant_id: str) -> bool:
    with unit_of_work(hub.engine) as s:
        row = s.get(Participant, participant_id)
    return row is not None and row.site == hub.site.site
