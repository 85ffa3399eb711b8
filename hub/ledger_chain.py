"""The ledger's tamper evidence: a keyed hash chain, signed checkpoints, and verification.

Appends take the chain head's row lock first (an UPDATE, which serialises writers on
PostgreSQL and SQLite alike), so `seq` and `prev_hash` follow commit order. The chain is
keyed (HMAC), so someone who can write to the database but lacks the key cannot forge
links; checkpoints are signed with Ed25519, so a truncated or rewritten chain is caught
up to the last checkpoint even by someone who has the chain key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, delete, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from hub.db.session import unit_of_work
from hub.db.tables import (
    LedgerCheckpoint,
    LedgerContentEpoch,
    LedgerEntry,
    LedgerHead,
    LedgerPurgePermit,
    utcnow,
)

GENESIS = "0" * 64
# What a link covers. Version 2 added the kind of legal basis; links written before it cover
# version 1 (`ledger_content_epoch` says from which seq each version applies).
CONTENT_V1 = ("seq", "recorded_at", "site", "message_id", "delivery_id", "attempt",
              "participant_id", "discloser", "recipient", "purpose", "message_type",
              "field_path", "data_class", "value_hmac", "decision", "reason", "legal_basis",
              "mapping_version", "notice")
CONTENT = (*CONTENT_V1, "basis_kind")
CONTENT_VERSION = 2


def _utc(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc) \
        .isoformat(timespec="microseconds")


class Chain:
    def __init__(self, chain_key: str) -> None:
        self._key = hashlib.sha256(b"lead-hub ledger chain|" + chain_key.encode()).digest()

    def link(self, prev_hash: str, entry: LedgerEntry) -> str:
        return self.link_values(prev_hash, [getattr(entry, name) for name in CONTENT])

    def link_values(self, prev_hash: str, content: Sequence[Any]) -> str:
        """The link for an entry's CONTENT values, in CONTENT order."""
        values = [_utc(v) if isinstance(v, datetime) else v for v in content]
        return hmac.new(self._key, prev_hash.encode() + orjson.dumps(values),
                        hashlib.sha256).hexdigest()

    @staticmethod
    def lock(session: Session) -> None:
        """Take the head's row lock (held to commit): appenders and revocations queue here."""
        session.execute(update(LedgerHead).where(LedgerHead.id == 1)  # type: ignore[arg-type]
                        .values(seq=LedgerHead.seq))

    def append(self, session: Session, entries: Iterable[LedgerEntry]) -> None:
        """Add entries to the chain inside the caller's transaction."""
        entries = list(entries)
        if not entries:
            return
        self.lock(session)  # again is harmless; first, it must come before the read
        head = session.get(LedgerHead, 1, populate_existing=True)
        assert head is not None, "ledger_head is missing: run `hub db upgrade`"
        seq, prev = head.seq, head.entry_hash
        for entry in entries:
            seq += 1
            entry.seq, entry.prev_hash = seq, prev
            entry.entry_hash = prev = self.link(prev, entry)
        head.seq, head.entry_hash = seq, prev
        session.add_all(entries)
        session.add(head)


class Signer:
    """Ed25519 signatures over checkpoints."""

    def __init__(self, seed_b64: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))
        self.public_hex = self._key.public_key().public_bytes_raw().hex()

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def checkpoint_message(upto_seq: int, head_hash: str, created_at: datetime) -> bytes:
    return f"lead-hub ledger checkpoint|{upto_seq}|{head_hash}|{_utc(created_at)}".encode()


def make_checkpoint(engine: Engine, signer: Signer, reason: str) -> LedgerCheckpoint:
    with unit_of_work(engine) as s:
        Chain.lock(s)
        head = s.get(LedgerHead, 1, populate_existing=True)
        assert head is not None
        now = utcnow()
        cp = LedgerCheckpoint(upto_seq=head.seq, head_hash=head.entry_hash, created_at=now,
                              reason=reason, public_key=signer.public_hex,
                              signature=signer.sign(checkpoint_message(head.seq,
                                                                       head.entry_hash, now)))
        s.add(cp)
    return cp


@dataclass
class Verdict:
    ok: bool
    entries: int
    checkpoints: int
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    problem: str = ""


def verify(engine: Engine, chain: Chain, public_hex: str,
           progress: Callable[[int], None] | None = None, batch: int = 5000) -> Verdict:
    """Walk the chain in seq order; name the first entry that does not hold."""
    trusted = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    with unit_of_work(engine) as s:
        checkpoints = list(s.exec(select(LedgerCheckpoint).order_by(LedgerCheckpoint.id)).all())  # type: ignore[arg-type]
    for cp in checkpoints:
        try:
            if cp.public_key != public_hex:
                raise InvalidSignature
            trusted.verify(bytes.fromhex(cp.signature),
                           checkpoint_message(cp.upto_seq, cp.head_hash, cp.created_at))
        except (InvalidSignature, ValueError):
            return Verdict(False, 0, len(checkpoints), cp.upto_seq, None,
                           f"checkpoint {cp.id} (up to seq {cp.upto_seq}) has no valid signature "
                           "from the hub's key: forged or altered")
    by_seq = {}
    for cp in checkpoints:
        by_seq.setdefault(cp.upto_seq, []).append(cp)
    with unit_of_work(engine) as s:
        epochs = {e.from_seq: e.version for e in s.exec(select(LedgerContentEpoch)).all()}
    # the seq from which links cover the current content; before it, version 1
    current_from = min((f for f, v in epochs.items() if v == CONTENT_VERSION), default=1)
    n_v1 = len(CONTENT_V1)
    purged_before = 0
    prev, expected, count = GENESIS, None, 0
    columns = [getattr(LedgerEntry, c) for c in (*CONTENT, "id", "prev_hash", "entry_hash")]
    n = len(CONTENT)
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=batch).execute(
            sa_select(*columns).order_by(LedgerEntry.seq))  # type: ignore[arg-type]
        for row in rows:
            count += 1
            seq, entry_id, prev_hash, entry_hash = row[0], row[n], row[n + 1], row[n + 2]
            if seq is None:
                return Verdict(False, count, len(checkpoints), None, entry_id,
                               f"entry id {entry_id} is outside the chain (no seq)")
            if expected is None:  # the first entry: the chain starts here, or after a purge
                expected = seq
                if seq != 1:
                    start = [c for c in checkpoints if c.upto_seq == seq - 1
                             and c.reason == "before-purge"]
                    if not start:
                        return Verdict(False, count, len(checkpoints), seq, entry_id,
                                       f"the chain starts at seq {seq}: entries before "
                                       "it are missing and no signed purge checkpoint covers it")
                    prev, purged_before = start[-1].head_hash, seq - 1
            if seq != expected:
                return Verdict(False, count, len(checkpoints), expected, entry_id,
                               f"entry seq {expected} is missing (next present is seq "
                               f"{seq}, id {entry_id}): deleted or reordered")
            if prev_hash != prev:
                return Verdict(False, count, len(checkpoints), seq, entry_id,
                               f"entry seq {seq} (id {entry_id}) does not follow the "
                               "entry before it: inserted, deleted or reordered")
            if chain.link_values(prev, row[:n] if seq >= current_from else row[:n_v1]) \
                    != entry_hash:
                return Verdict(False, count, len(checkpoints), seq, entry_id,
                               f"entry seq {seq} (id {entry_id}) was altered after it "
                               "was written")
            for cp in by_seq.get(seq, []):
                if cp.head_hash != entry_hash:
                    return Verdict(False, count, len(checkpoints), seq, entry_id,
                                   f"checkpoint {cp.id} signed a different chain at seq "
                                   f"{seq}: the entries up to it were rewritten")
            prev, expected = entry_hash, seq + 1
            if progress and count % batch == 0:
                progress(count)
    last_seq = (expected or 1) - 1
    signed = [cp for cp in checkpoints if cp.upto_seq > max(last_seq, purged_before)]
    if signed:
        return Verdict(False, count, len(checkpoints), last_seq + 1, None,
                       f"checkpoint {signed[0].id} signed entries up to seq "
                       f"{signed[0].upto_seq}, but the ledger ends at seq {last_seq}: truncated")
    if progress:
        progress(count)
    return Verdict(True, count, len(checkpoints))


@dataclass
class Purged:
    entries: int
    upto_seq: int
    checkpoint_id: int | None


def purge_before(engine: Engine, signer: Signer, cutoff: datetime) -> Purged:
    """Remove the chain's oldest entries (those recorded before `cutoff`) behind a signed checkpoint.

    Only a prefix of the chain can go, so what remains still verifies: the checkpoint signs
    the hash of the last purged entry, and the first remaining entry links to it.
    """
    with unit_of_work(engine) as s:
        Chain.lock(s)
        first_kept = s.exec(select(LedgerEntry.seq).where(LedgerEntry.recorded_at >= cutoff)
                            .order_by(LedgerEntry.seq).limit(1)).first()  # type: ignore[arg-type]
        head = s.get(LedgerHead, 1, populate_existing=True)
        assert head is not None
        upto = (first_kept - 1) if first_kept is not None else head.seq
        last = s.exec(select(LedgerEntry).where(LedgerEntry.seq == upto)).first()
        if upto <= 0 or last is None:
            return Purged(0, upto, None)
        now = utcnow()
        cp = LedgerCheckpoint(upto_seq=upto, head_hash=last.entry_hash or "", created_at=now,
                              reason="before-purge", public_key=signer.public_hex,
                              signature=signer.sign(checkpoint_message(
                                  upto, last.entry_hash or "", now)))
        s.add(cp)
        s.flush()
        s.add(LedgerPurgePermit(id=1, checkpoint_id=cp.id or 0))
        s.flush()
        result = s.execute(delete(LedgerEntry).where(LedgerEntry.seq <= upto))  # type: ignore[arg-type]
        s.execute(delete(LedgerPurgePermit))
        return Purged(int(result.rowcount), upto, cp.id)  # type: ignore[attr-defined]
