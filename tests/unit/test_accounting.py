"""How the accounting reads one delivery's ledger rows: which attempts count as disclosures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.accounting import ACCEPTED, UNKNOWN, _delivery_lines, reached
from hub.db.tables import LedgerEntry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _row(attempt: int, path: str, decision: str = "disclosed", reason: str = "ok",
         basis: str = "Consent/c-1/_history/1", kind: str | None = "consent") -> LedgerEntry:
    return LedgerEntry(
        recorded_at=T0 + timedelta(minutes=attempt), site="santa-fe", message_id="m",
        delivery_id="d", attempt=attempt, participant_id="p", discloser="provider",
        recipient="da", purpose="LEAD-CJ-MONITORING", message_type="referral-status",
        field_path=path, data_class="engagement", value_hmac="x", decision=decision,
        reason=reason, legal_basis=basis, mapping_version="v1", basis_kind=kind)


def _failed(attempt: int, subject: str, reason: str) -> LedgerEntry:
    return _row(attempt, subject, "attempt-failed", reason, "-", None)


@pytest.mark.parametrize("subject, reason, expected", [
    ("refused", "anything", "refused"),
    ("delivery", "recipient refused the delivery with HTTP 400; parked", "refused"),
    ("delivery", "recipient answered HTTP 503; will retry", "error-answer"),
    ("delivery", "recipient endpoint timed out; will retry", "timed-out"),
    ("delivery", "recipient endpoint unreachable (ConnectError); will retry", "not-sent"),
    ("delivery", "recipient endpoint unreachable (RemoteProtocolError); parked", "no-answer"),
    ("delivery", "something the hub never wrote", "no-answer"),
])
def test_attempt_outcomes_are_read_from_new_and_older_rows(subject: str, reason: str,
                                                           expected: str) -> None:
    """Rows name the outcome; older rows' reasons are read, and anything unclear counts as sent."""
    assert reached(_failed(1, subject, reason)) == expected


def test_a_delivered_delivery_is_one_line_with_every_field_any_attempt_sent() -> None:
    """A timed-out first attempt and an accepted second: one accepted line, fields of both."""
    rows = [_row(1, "status"), _row(1, "exit_reason"), _failed(1, "timed-out", "timed out"),
            _row(2, "status")]
    [line] = _delivery_lines(rows, "delivered")
    assert line.outcome == ACCEPTED
    assert [p for p, _ in line.fields] == ["status", "exit_reason"]
    assert line.date == T0 + timedelta(minutes=2)


def test_an_attempt_with_no_recorded_answer_counts_as_sent() -> None:
    """Rows written but no answer recorded (the hub stopped): listed, outcome unknown."""
    [line] = _delivery_lines([_row(1, "status")], "pending")
    assert line.outcome == UNKNOWN


def test_attempts_that_never_connected_disclosed_nothing() -> None:
    """Connection refused on every attempt: no disclosure line."""
    rows = [_row(1, "status"), _failed(1, "not-sent", "unreachable"),
            _row(2, "status"), _failed(2, "not-sent", "unreachable")]
    assert _delivery_lines(rows, "parked") == []


def test_a_delivery_sent_once_and_then_withheld_is_both_a_disclosure_and_a_withholding() -> None:
    """Attempt 1 timed out, the consent was revoked, attempt 2 withheld: both are reported."""
    rows = [_row(1, "status"), _failed(1, "timed-out", "timed out"),
            _row(2, "status", "withheld", "R3: revoked", "none", "none")]
    lines = _delivery_lines(rows, "withheld")
    assert [x.outcome for x in lines] == ["timed-out", "withheld"]
    assert lines[1].withheld == [("status", "engagement", "R3: revoked")]
