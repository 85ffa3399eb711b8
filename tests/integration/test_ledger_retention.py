"""Retention: the oldest entries can be purged behind a signed checkpoint; the rest still verifies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from hub.db.tables import utcnow
from hub.ledger_chain import purge_before, verify
from tests.harness import RunningHub, notice, wait_for


def _seqs(rh: RunningHub) -> list[int]:
    with rh.hub.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT seq FROM ledger_entry ORDER BY seq"))]


def test_purge_removes_a_prefix_behind_a_checkpoint_and_the_rest_verifies(
    running: RunningHub,
) -> None:
    """Entries before the cutoff go; what remains verifies; deletes are refused again after."""
    first = running.submit("sfpd", "diversion-notices", notice())
    wait_for("first delivered", lambda: running.settled(first, 2))
    cutoff = utcnow()
    second = running.submit("sfpd", "diversion-notices", notice())
    wait_for("second delivered", lambda: running.settled(second, 2))
    before = _seqs(running)
    old = len(running.hub.ledger.for_message(first))

    purged = purge_before(running.hub.engine, running.hub.signer, cutoff)
    assert purged.entries == old and purged.upto_seq == old
    assert _seqs(running) == [s for s in before if s > old]
    verdict = verify(running.hub.engine, running.hub.chain, running.hub.signer.public_hex)
    assert verdict.ok, verdict.problem
    assert running.hub.ledger.for_message(first) == []

    with running.hub.engine.begin() as conn:  # the purge permit is gone: deletes refused again
        try:
            conn.execute(text("DELETE FROM ledger_entry WHERE seq = :s"), {"s": old + 1})
            refused = False
        except Exception as exc:  # noqa: BLE001 (either dialect's error)
            refused = "append-only" in str(exc)
    assert refused


def test_purge_with_nothing_old_enough_does_nothing(running: RunningHub) -> None:
    """A cutoff before every entry removes nothing and signs nothing."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("delivered", lambda: running.settled(case, 2))
    purged = purge_before(running.hub.engine, running.hub.signer, utcnow() - timedelta(days=1))
    assert purged.entries == 0 and purged.checkpoint_id is None
    assert verify(running.hub.engine, running.hub.chain, running.hub.signer.public_hex).ok
