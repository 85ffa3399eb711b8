"""Ledger entries that are not field decisions: views of PHI, failed attempts, replays.

Each is one chained row, so the compliance record of who looked at what, and what went
wrong when, is as tamper-evident as the disclosures themselves.
"""

from __future__ import annotations

from sqlalchemy import Engine

from hub.db.session import unit_of_work
from hub.db.tables import LedgerEntry, utcnow
from hub.ledger_chain import Chain

VIEWED = "viewed"
ATTEMPT_FAILED = "attempt-failed"
REPLAYED = "replayed"
VERIFIED = "verified"  # a verification run and its verdict
LOGIN_FAILED = "login-failed"  # a console sign-in whose password was checked and wrong
ACCOUNT_LOCKED = "account-locked"  # too many consecutive failures for one username
ACCOUNT_UNLOCKED = "account-unlocked"  # `hub officer unlock`, by whoever ran it
ADDRESS_LIMITED = "address-limited"  # a client address reached its failures per window


def entry(*, site: str, kind: str, actor: str, subject: str, reason: str,
          participant_id: str | None = None, message_id: str = "-", delivery_id: str = "-",
          attempt: int = 0, recipient: str = "-") -> LedgerEntry:
    """One event row, for the caller's transaction to append. `subject` says what was looked
    at or acted on (no values)."""
    return LedgerEntry(
        recorded_at=utcnow(), site=site, message_id=message_id, delivery_id=delivery_id,
        attempt=attempt, participant_id=participant_id, discloser=actor[:64],
        recipient=recipient[:64], purpose="-", message_type="-", field_path=subject[:200],
        data_class="-", value_hmac="-", decision=kind, reason=reason[:300], legal_basis="-",
        mapping_version="-",
    )


def record(engine: Engine, chain: Chain, *, site: str, kind: str, actor: str, subject: str,
           reason: str, participant_id: str | None = None, message_id: str = "-",
           delivery_id: str = "-", attempt: int = 0, recipient: str = "-") -> None:
    """Append one event row in a transaction of its own."""
    row = entry(site=site, kind=kind, actor=actor, subject=subject, reason=reason,
                participant_id=participant_id, message_id=message_id,
                delivery_id=delivery_id, attempt=attempt, recipient=recipient)
    with unit_of_work(engine) as s:
        chain.append(s, [row])
