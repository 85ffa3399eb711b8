"""Tables. Payloads are stored encrypted; the ledger holds keyed hashes, never values."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Client(SQLModel, table=True):
    """An OAuth2 client: belongs to one agency of one site and holds scopes."""

    __tablename__ = "client"
    client_id: str = Field(primary_key=True, max_length=64)
    secret_hash: str = Field(max_length=200)
    site: str = Field(max_length=64)
    agency: str = Field(max_length=64)
    scopes: str = Field(max_length=500)  # space-separated, as in OAuth2
    created_at: datetime = Field(default_factory=utcnow)
    disabled: bool = False


class Participant(SQLModel, table=True):
    """A person in the program, known only by keyed hashes of identifiers."""

    __tablename__ = "participant"
    __table_args__ = (
        UniqueConstraint("site", "state_id_hmac"),
        # Without a state id, date of birth and name identify at most one participant; people
        # with different state ids may share them.
        Index("uq_participant_dob_name_without_state_id", "site", "dob_name_hmac", unique=True,
              sqlite_where=text("state_id_hmac IS NULL"),
              postgresql_where=text("state_id_hmac IS NULL")),
    )
    id: str = Field(primary_key=True, max_length=36)
    site: str = Field(max_length=64)
    state_id_hmac: str | None = Field(default=None, max_length=64)
    dob_name_hmac: str = Field(max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """A canonical message accepted at ingest. The body is encrypted at rest."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("site", "sender", "idempotency_key"),)
    id: str = Field(primary_key=True, max_length=36)
    site: str = Field(max_length=64, index=True)
    sender: str = Field(max_length=64)
    type: str = Field(max_length=32)
    idempotency_key: str | None = Field(default=None, max_length=200)
    body_sha256: str = Field(max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    case_ref: str | None = Field(default=None, max_length=120, index=True)
    participant_id: str | None = Field(default=None, max_length=36, index=True)
    received_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One message to one recipient. Its id is stable, so partners can de-duplicate on it."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("message_id", "recipient"),)
    id: str = Field(primary_key=True, max_length=36)
    message_id: str = Field(max_length=36, index=True)
    site: str = Field(max_length=64)
    recipient: str = Field(max_length=64)
    form: str = Field(max_length=32)
    purpose: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending|delivered|withheld|parked
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    lease_until: datetime | None = None  # a worker holds the delivery until then
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """One field sent or withheld (or a view of PHI), written before any byte leaves.

    Append-only and hash-chained: `entry_hash` is a keyed hash of `prev_hash` and this
    entry's content, in `seq` order; signed checkpoints pin the chain's head.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("uq_ledger_entry_seq", "seq", unique=True),
        # the accounting of disclosures: one patient, one period
        Index("ix_ledger_entry_participant_time", "participant_id", "recorded_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    seq: int | None = None
    prev_hash: str | None = Field(default=None, max_length=64)
    entry_hash: str | None = Field(default=None, max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, index=True)
    site: str = Field(max_length=64)
    message_id: str = Field(max_length=36, index=True)
    delivery_id: str = Field(max_length=36, index=True)
    attempt: int
    participant_id: str | None = Field(default=None, max_length=36, index=True)
    discloser: str = Field(max_length=64)
    recipient: str = Field(max_length=64)
    purpose: str = Field(max_length=64)
    message_type: str = Field(max_length=32)
    field_path: str = Field(max_length=200)
    data_class: str = Field(max_length=32)
    value_hmac: str = Field(max_length=64)
    decision: str = Field(max_length=16)  # disclosed | withheld
    reason: str = Field(max_length=300)
    legal_basis: str = Field(max_length=120)  # the consent or court order's reference, or why
    mapping_version: str = Field(max_length=32)
    notice: str | None = Field(default=None, max_length=32)  # which 2.32 statement went along
    # consent | court-order | lead-agreement | none; None on rows that are not field decisions
    basis_kind: str | None = Field(default=None, max_length=16)


class LedgerContentEpoch(SQLModel, table=True):
    """From which seq on the chain's links cover which content (a column added later is
    covered from the migration that added it; older links keep the content they had)."""

    __tablename__ = "ledger_content_epoch"
    from_seq: int = Field(primary_key=True)
    version: int


class LedgerHead(SQLModel, table=True):
    """The chain's last link: one row, updated with every append (and so a write lock)."""

    __tablename__ = "ledger_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    entry_hash: str = Field(default="0" * 64, max_length=64)


class LedgerPurgePermit(SQLModel, table=True):
    """Present only inside a retention purge's transaction: the one time rows may go."""

    __tablename__ = "ledger_purge_permit"
    id: int = Field(default=1, primary_key=True)
    checkpoint_id: int


class LedgerCheckpoint(SQLModel, table=True):
    """A signed statement of the chain's head at a moment (Ed25519)."""

    __tablename__ = "ledger_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    upto_seq: int
    head_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    reason: str = Field(max_length=64)  # interval | on-demand | before-purge
    public_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class InboxItem(SQLModel, table=True):
    """A delivery kept for an agency that pulls. The payload is encrypted at rest."""

    __tablename__ = "inbox_item"
    id: str = Field(primary_key=True, max_length=36)  # the delivery id
    site: str = Field(max_length=64)
    agency: str = Field(max_length=64, index=True)
    message_id: str = Field(max_length=36)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    acked_at: datetime | None = None


class ConsentVersion(SQLModel, table=True):
    """Every version of every consent and court order; nothing is ever overwritten."""

    __tablename__ = "consent_version"
    __table_args__ = (UniqueConstraint("consent_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    consent_id: str = Field(max_length=36, index=True)
    version: int
    site: str = Field(max_length=64)
    participant_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)  # active | revoked
    terms: str  # JSON of the decision terms (agency ids, classes, times): no PHI
    resource: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # encrypted source
    recorded_at: datetime = Field(default_factory=utcnow)
    recorded_by: str = Field(max_length=120)
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=200)
    revocation_method: str | None = Field(default=None, max_length=16)  # written | electronic


class CaseEvent(SQLModel, table=True):
    """Events that change what consents allow, e.g. the final disposition of the charges."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("message_id", "event"),)
    id: int | None = Field(default=None, primary_key=True)
    site: str = Field(max_length=64)
    participant_id: str = Field(max_length=36, index=True)
    case_ref: str = Field(max_length=120)
    event: str = Field(max_length=64)
    occurred_at: datetime
    message_id: str = Field(max_length=36)
    recorded_at: datetime = Field(default_factory=utcnow)


class Officer(SQLModel, table=True):
    """A compliance officer's console account. Only agencies of kind `compliance` may log in."""

    __tablename__ = "officer"
    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=200)  # scrypt, as client secrets are kept
    display_name: str = Field(max_length=200)
    site: str = Field(max_length=64)
    agency: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    disabled: bool = False


class ConsoleLoginAccount(SQLModel, table=True):
    """Consecutive failed console sign-ins under one username, known or not.

    Keyed by a keyed hash of the username typed, so an unknown name is throttled and locked
    exactly as a real account is (the limiter must not tell which exist) and no mistyped
    name, or password typed into the username box, is stored.
    """

    __tablename__ = "console_login_account"
    account_key: str = Field(primary_key=True, max_length=64)
    failed_count: int = 0
    last_failure_at: datetime | None = None
    next_attempt_at: datetime | None = None  # no password is checked before this
    locked_at: datetime | None = None  # until `hub officer unlock`


class ConsoleLoginFailure(SQLModel, table=True):
    """A console sign-in attempt from one client address, kept while it is in the window.

    Written before the password is checked and removed if it was right, so parallel
    attempts from one address count against each other.
    """

    __tablename__ = "console_login_failure"
    __table_args__ = (Index("ix_console_login_failure_address", "address", "failed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64)
    failed_at: datetime = Field(default_factory=utcnow, index=True)
