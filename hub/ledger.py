"""The disclosure ledger, first form: one append-only row per field sent or withheld.

Rows are only ever inserted; no code path updates or deletes them. Values are never stored:
a keyed hash proves what was sent without making the ledger a second copy of the records.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, func
from sqlmodel import select

from consent.decisions import Decision, DisclosureContext
from hub.classification import FieldValue
from hub.crypto import Hasher
from hub.db.session import unit_of_work
from hub.db.tables import LedgerEntry

DISCLOSED = "disclosed"
WITHHELD = "withheld"
SHORT_NOTICE = "2.32(a)(2) short"


def entries_for(
    ctx: DisclosureContext,
    fields: Sequence[FieldValue],
    decisions: Sequence[Decision],
    *,
    message_id: str,
    delivery_id: str,
    attempt: int,
    whole_delivery_withheld: str | None,
    mapping_version: str,
    hasher: Hasher,
    notice: str | None = None,
) -> list[LedgerEntry]:
    """Ledger rows for one delivery attempt: every field, with what was decided and why."""
    rows = []
    for field, decision in zip(fields, decisions, strict=True):
        if whole_delivery_withheld and decision.permit:
            outcome, reason = WITHHELD, whole_delivery_withheld
        else:
            outcome = DISCLOSED if decision.permit else WITHHELD
            reason = decision.reason
        rows.append(
            LedgerEntry(
                recorded_at=ctx.at,
                site=ctx.site,
                message_id=message_id,
                delivery_id=delivery_id,
                attempt=attempt,
                participant_id=ctx.participant_id,
                discloser=ctx.discloser.agency,
                recipient=ctx.recipient.agency,
                purpose=ctx.purpose,
                message_type=ctx.message_type,
                field_path=field.path,
                data_class=field.data_class.value,
                value_hmac=hasher.of(field.value),
                decision=outcome,
                reason=reason[:300],
                legal_basis=(decision.consent_ref or decision.legal_basis)[:120],
                mapping_version=mapping_version,
                notice=notice if outcome == DISCLOSED else None,
                basis_kind=decision.basis_kind.value,
            )
        )
    return rows


class LedgerReader:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def for_delivery(self, delivery_id: str) -> list[LedgerEntry]:
        with unit_of_work(self._engine) as s:
            return list(
                s.exec(
                    select(LedgerEntry)
                    .where(LedgerEntry.delivery_id == delivery_id)
                    .order_by(LedgerEntry.id)  # type: ignore[arg-type]
                ).all()
            )

    def for_message(self, message_id: str) -> list[LedgerEntry]:
        with unit_of_work(self._engine) as s:
            return list(
                s.exec(
                    select(LedgerEntry)
                    .where(LedgerEntry.message_id == message_id)
                    .order_by(LedgerEntry.id)  # type: ignore[arg-type]
                ).all()
            )

    def count_for_delivery(self, delivery_id: str) -> int:
        with unit_of_work(self._engine) as s:
            return int(
                s.exec(
                    select(func.count()).where(LedgerEntry.delivery_id == delivery_id)
                ).one()
            )
