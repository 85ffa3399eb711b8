"""The ledger is append-only and tamper-evident: `hub audit verify` names the first bad entry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.ledger_chain import make_checkpoint, verify
from tests.harness import RunningHub, hub_cli, notice, wait_for


@pytest.fixture
def ledger(running: RunningHub) -> Iterator[RunningHub]:
    """A ledger with two deliveries' worth of entries (about 23), checkpointed."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("delivered", lambda: running.settled(case, 2))
    make_checkpoint(running.hub.engine, running.hub.signer, "on-demand")
    yield running


def _tamper(rh: RunningHub, *statements: str) -> None:
    """Change the ledger the way an intruder with database access would: around the guards."""
    engine = rh.hub.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS ledger_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS ledger_no_delete"))
        for statement in statements:
            conn.execute(text(statement))


def _verify_cli(rh: RunningHub) -> tuple[int, str]:
    result = hub_cli(rh.hub.settings, "audit", "verify")
    return result.returncode, result.stdout + result.stderr


def test_untouched_ledger_verifies_clean(ledger: RunningHub) -> None:
    """A ledger written by the hub verifies, with its checkpoint."""
    code, out = _verify_cli(ledger)
    assert code == 0, out
    assert "ledger verified" in out and "1 signed checkpoint" in out


def test_database_refuses_update_and_delete(ledger: RunningHub) -> None:
    """Without going around the guards, UPDATE and DELETE on the ledger fail."""
    for statement in ("UPDATE ledger_entry SET recipient = 'x' WHERE seq = 1",
                      "DELETE FROM ledger_entry WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            with ledger.hub.engine.begin() as conn:
                conn.execute(text(statement))


TAMPERING: list[tuple[str, list[str], int, str]] = [
    ("edit a field", ["UPDATE ledger_entry SET recipient = 'someone-else' WHERE seq = 5"],
     5, "altered"),
    ("relabel a legal basis", ["UPDATE ledger_entry SET basis_kind = 'court-order' "
                               "WHERE seq = 5"], 5, "altered"),
    ("move the content epoch", ["UPDATE ledger_content_epoch SET from_seq = from_seq + 1000"],
     1, "altered"),
    ("delete a row", ["DELETE FROM ledger_entry WHERE seq = 7"], 7, "missing"),
    ("insert a row", [
        "UPDATE ledger_entry SET seq = -(seq + 1) WHERE seq >= 4",
        "UPDATE ledger_entry SET seq = -seq WHERE seq < 0",
        "INSERT INTO ledger_entry (recorded_at, site, message_id, delivery_id, attempt, "
        "discloser, recipient, purpose, message_type, field_path, data_class, value_hmac, "
        "decision, reason, legal_basis, mapping_version, seq, prev_hash, entry_hash) "
        "SELECT recorded_at, site, message_id, delivery_id, attempt, discloser, 'da', purpose, "
        "message_type, 'person.family_name', data_class, value_hmac, decision, reason, "
        "legal_basis, mapping_version, 4, prev_hash, entry_hash FROM ledger_entry WHERE seq = 3"],
     4, "does not follow"),
    ("swap two rows", ["UPDATE ledger_entry SET seq = -1 WHERE seq = 2",
                       "UPDATE ledger_entry SET seq = 2 WHERE seq = 3",
                       "UPDATE ledger_entry SET seq = 3 WHERE seq = -1"], 2, "does not follow"),
    ("forge a checkpoint", [
        "UPDATE ledger_checkpoint SET head_hash = '" + "f" * 64 + "'"], None, "signature"),
    ("truncate after a checkpoint", ["DELETE FROM ledger_entry WHERE seq > 10"], 11,
     "truncated"),
]


@pytest.mark.parametrize("how, statements, bad_seq, words", TAMPERING,
                         ids=[t[0] for t in TAMPERING])
def test_tampering_is_detected_and_the_first_bad_entry_named(
    ledger: RunningHub, how: str, statements: list[str], bad_seq: int | None, words: str,
) -> None:
    """Each kind of tampering makes `hub audit verify` exit 1 and name where it starts."""
    assert _verify_cli(ledger)[0] == 0
    _tamper(ledger, *statements)
    code, out = _verify_cli(ledger)
    assert code == 1, out
    assert "LEDGER VERIFICATION FAILED" in out and words in out, out
    if bad_seq is not None:
        assert f"at seq {bad_seq} " in out, out


def test_a_checkpoint_signed_by_another_key_is_refused(ledger: RunningHub) -> None:
    """A checkpoint re-signed with an intruder's key does not verify against the hub's key."""
    from hub.ledger_chain import Signer

    intruder = Signer("aW50cnVkZXItc2lnbmluZy1rZXktMzItYnl0ZXMhISE=")
    make_checkpoint(ledger.hub.engine, intruder, "on-demand")
    verdict = verify(ledger.hub.engine, ledger.hub.chain, ledger.hub.signer.public_hex)
    assert not verdict.ok and "signature" in verdict.problem
