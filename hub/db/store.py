"""Messages, participants and deliveries: the hub's operational records."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

from hub.db.session import insert_ignoring_duplicates, unit_of_work
from hub.db.tables import Delivery, LedgerEntry, Message, Participant, utcnow
from hub.errors import TransientError
from hub.ledger_chain import Chain

Decide = Callable[[], tuple[list[SQLModel], str | None]]
DELIVERY_NS = uuid.UUID("5b0a4c1e-7f37-4d0e-9a52-2f4f6c0d8e11")


def _keyed(site: str, sender: str, key: str) -> SelectOfScalar[Message]:
    """The message a sender stored under an idempotency key (the unique constraint's index)."""
    return select(Message).where(Message.site == site, Message.sender == sender,
                                 Message.idempotency_key == key)


def delivery_id(message_id: str, recipient: str) -> str:
    """Stable: the same message to the same recipient is always the same delivery."""
    return str(uuid.uuid5(DELIVERY_NS, f"{message_id}/{recipient}"))


@dataclass(frozen=True)
class Stored:
    message_id: str
    duplicate: bool
    body_sha256: str


@dataclass(frozen=True)
class CaseInfo:
    sender: str
    participant_id: str | None


class Store:
    def __init__(self, engine: Engine, chain: Chain) -> None:
        self.engine = engine
        self.chain = chain

    # messages -------------------------------------------------------------------------------
    def add_message(self, msg: Message, legacy_key: str | None = None) -> Stored:
        """Store a new message, or return the one already stored under its idempotency key.

        `legacy_key` is the key as the client sent it: rows stored before keys were hashed
        hold it raw, and a client retrying across the upgrade must still find its message.
        No new row is ever stored under a raw key, so that lookup cannot race an insert.
        """
        try:
            with unit_of_work(self.engine) as s:
                if legacy_key is not None:
                    earlier = s.exec(_keyed(msg.site, msg.sender, legacy_key)).first()
                    if earlier is not None:
                        return Stored(earlier.id, True, earlier.body_sha256)
                s.add(msg)
            return Stored(msg.id, False, msg.body_sha256)
        except IntegrityError:
            if msg.idempotency_key is None:
                raise
        with unit_of_work(self.engine) as s:
            existing = s.exec(_keyed(msg.site, msg.sender, msg.idempotency_key)).one()
            return Stored(existing.id, True, existing.body_sha256)

    def discard_message(self, message_id: str) -> None:
        """Forget a message that was never queued (its sender was told it was not accepted)."""
        with unit_of_work(self.engine) as s:
            s.execute(delete(Message).where(Message.id == message_id))  # type: ignore[arg-type]

    def get_message(self, message_id: str) -> Message | None:
        with unit_of_work(self.engine) as s:
            return s.get(Message, message_id)

    def case(self, site: str, case_ref: str) -> CaseInfo | None:
        """The diversion notice a case reference points at (its id is the case reference)."""
        with unit_of_work(self.engine) as s:
            row = s.exec(
                select(Message.sender, Message.participant_id).where(
                    Message.id == case_ref, Message.site == site,
                    Message.type == "diversion-notice",
                )
            ).first()
            return CaseInfo(row[0], row[1]) if row else None

    def set_participant(self, message_id: str, case_ref: str, participant_id: str | None) -> None:
        with unit_of_work(self.engine) as s:
            s.execute(
                update(Message)
                .where(Message.id == message_id)  # type: ignore[arg-type]
                .values(participant_id=participant_id, case_ref=case_ref)
            )

    # participants ---------------------------------------------------------------------------
    def match_participant(self, site: str, state_id_hmac: str | None, dob_name_hmac: str) -> str:
        """The participant these identifiers name; a new one only if none can be matched.

        A state id decides. Without one, date of birth with name matches a single candidate.
        Two different state ids are two people even with the same name and date of birth;
        a candidate without a state id takes the new one. Unique indexes make a concurrent
        duplicate impossible: the loser of a race re-reads the winner.
        """
        for _ in range(3):
            try:
                with unit_of_work(self.engine) as s:
                    if state_id_hmac:
                        known = s.exec(select(Participant).where(
                            Participant.site == site,
                            Participant.state_id_hmac == state_id_hmac)).first()
                        if known:
                            return known.id
                    candidates = s.exec(select(Participant).where(
                        Participant.site == site,
                        Participant.dob_name_hmac == dob_name_hmac)).all()
                    without_state = [c for c in candidates if c.state_id_hmac is None]
                    if state_id_hmac and without_state:
                        without_state[0].state_id_hmac = state_id_hmac
                        return without_state[0].id
                    if not state_id_hmac and len(candidates) == 1:
                        return candidates[0].id
                    if not state_id_hmac and without_state:
                        return without_state[0].id
                    # no candidate, other state ids only, or several: a new participant
                    pid = str(uuid.uuid4())
                    s.add(Participant(id=pid, site=site, state_id_hmac=state_id_hmac,
                                      dob_name_hmac=dob_name_hmac))
                    return pid
            except IntegrityError:
                continue
        raise TransientError("participant matching kept racing; will retry")

    # deliveries -----------------------------------------------------------------------------
    def add_deliveries(self, rows: list[Delivery]) -> None:
        with unit_of_work(self.engine) as s:
            insert_ignoring_duplicates(s, Delivery, [r.model_dump() for r in rows])

    def claim(self, delivery: str, lease: timedelta, decide: Decide) -> str:
        """Take the delivery for this worker, decide it, and record the decision: one transaction.

        `decide` runs after the delivery is claimed and the ledger's head is locked, and
        returns the records to write and, if the delivery ends here, its final status.
        Revocations take the same lock, so a decision and a revocation are strictly ordered:
        a decision either sees the revocation or is recorded before it was made.
        Returns 'claimed', or why the delivery cannot be taken ('delivered', 'withheld',
        'busy' while another worker's lease runs, 'missing'); then nothing is written.
        """
        now = utcnow()
        with unit_of_work(self.engine) as s:
            result = s.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery,  # type: ignore[arg-type]
                    Delivery.status.in_(("pending", "parked")),  # type: ignore[attr-defined]
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),  # type: ignore[union-attr,operator]
                )
                .values(attempts=Delivery.attempts + 1, updated_at=now, lease_until=now + lease)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                row = s.get(Delivery, delivery)
                if row is None:
                    return "missing"
                return row.status if row.status in ("delivered", "withheld") else "busy"
            self.chain.lock(s)
            records, final_status = decide()
            if final_status:
                s.execute(update(Delivery).where(Delivery.id == delivery)  # type: ignore[arg-type]
                          .values(status=final_status, lease_until=None, last_error=None))
            s.add_all([r for r in records if not isinstance(r, LedgerEntry)])
            self.chain.append(s, [r for r in records if isinstance(r, LedgerEntry)])
            return "claimed"

    def claim_batch(self, deliveries: list[str], lease: timedelta,
                    decide: Callable[[str], tuple[list[SQLModel], str | None]]) -> dict[str, str]:
        """`claim` for several deliveries in one transaction, under one lock of the ledger's head.

        The same order as `claim` (delivery rows, then the head), so the two never deadlock.
        `decide(id)` runs for each claimed delivery; if it raises, nothing is written. Returns,
        per delivery, 'claimed' or why it cannot be taken, as `claim` does.
        """
        now = utcnow()
        with unit_of_work(self.engine) as s:
            claimed = set(s.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(deliveries),  # type: ignore[attr-defined]
                    Delivery.status.in_(("pending", "parked")),  # type: ignore[attr-defined]
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),  # type: ignore[union-attr,operator]
                )
                .values(attempts=Delivery.attempts + 1, updated_at=now, lease_until=now + lease)
                .returning(Delivery.id)).scalars())  # type: ignore[arg-type]
            states = dict.fromkeys(deliveries, "missing")
            others = set(deliveries) - claimed
            if others:
                for did, status in s.execute(select(Delivery.id, Delivery.status).where(
                        Delivery.id.in_(others))):  # type: ignore[attr-defined]
                    states[did] = status if status in ("delivered", "withheld") else "busy"
            if not claimed:
                return states
            self.chain.lock(s)
            records: list[SQLModel] = []
            entries: list[LedgerEntry] = []
            finals: dict[str, list[str]] = {}
            for did in deliveries:
                if did not in claimed:
                    continue
                states[did] = "claimed"
                written, final_status = decide(did)
                records += [r for r in written if not isinstance(r, LedgerEntry)]
                entries += [r for r in written if isinstance(r, LedgerEntry)]
                if final_status:
                    finals.setdefault(final_status, []).append(did)
            for status, dids in finals.items():
                s.execute(update(Delivery).where(Delivery.id.in_(dids))  # type: ignore[attr-defined]
                          .values(status=status, lease_until=None, last_error=None))
            s.add_all(records)
            self.chain.append(s, entries)
            return states

    def finish_batch(self, delivered: list[str], failed: list[tuple[str, str, str]],
                     events: list[LedgerEntry]) -> None:
        """Outcomes of several pushes, and their attempt-failed ledger rows, in one transaction."""
        now = utcnow()
        with unit_of_work(self.engine) as s:
            if delivered:
                s.execute(update(Delivery).where(Delivery.id.in_(delivered))  # type: ignore[attr-defined]
                          .values(status="delivered", last_error=None, lease_until=None,
                                  updated_at=now))
            for did, status, error in failed:
                s.execute(update(Delivery).where(Delivery.id == did)  # type: ignore[arg-type]
                          .values(status=status, last_error=error[:500], lease_until=None,
                                  updated_at=now))
            self.chain.append(s, events)

    def finish(self, delivery: str, status: str, error: str | None = None) -> None:
        """Record the outcome and release the lease."""
        with unit_of_work(self.engine) as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == delivery)  # type: ignore[arg-type]
                .values(status=status, last_error=error, lease_until=None, updated_at=utcnow())
            )

    def deliveries_of(self, message_id: str) -> list[Delivery]:
        with unit_of_work(self.engine) as s:
            return list(s.exec(select(Delivery).where(Delivery.message_id == message_id)).all())


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
