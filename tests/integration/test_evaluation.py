"""Evaluator extracts are de-identified unless a current agreement is on file (R13)."""

from __future__ import annotations

import json
from datetime import timedelta

from hub.db.tables import utcnow
from tests.harness import RunningHub, hub_cli, notice, status, wait_for


def _story(running: RunningHub) -> str:
    case = running.submit("sfpd", "diversion-notices", notice(
        referred_at=(utcnow() - timedelta(days=10)).isoformat()))
    wait_for("delivered", lambda: running.settled(case, 2))
    for code, days_ago in (("intake-done", 7), ("engaged", 3)):
        m = running.submit("provider", "referral-status", status(
            case, status=code, occurred_at=(utcnow() - timedelta(days=days_ago)).isoformat()))
        wait_for("status settled", lambda m=m: running.settled(m, 2))
    return case


def test_deidentified_extract_has_intervals_and_no_identifiers(running: RunningHub) -> None:
    """Pathway, year and days to each milestone; no names, dates of birth, ids or dates."""
    case = _story(running)
    out = hub_cli(running.hub.settings, "audit", "extract", "--evaluator", "public-dashboard",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["pathway"] == "arrest-diversion" and row["referral_year"] == utcnow().year
    assert (row["days_to_intake_done"], row["days_to_engaged"]) == (3, 7)
    assert row["days_to_exited"] is None and row["exited"] is False
    text = out.stdout
    for identifying in ("Testperson", "Avery", "1988-03-14", case, "NM-T-1234"):
        assert identifying not in text
    entries = [e for e in running.hub.ledger.for_message("-") if e.decision == "extract"]
    assert entries and entries[-1].recipient == "public-dashboard"


def test_identified_extract_needs_a_current_agreement(running: RunningHub) -> None:
    """Without an agreement, identified extracts are refused; with one, case keys are added."""
    case = _story(running)
    refused = hub_cli(running.hub.settings, "audit", "extract", "--evaluator",
                      "public-dashboard", "--identified")
    assert refused.returncode == 2 and "no current evaluator agreement" in refused.stderr
    allowed = hub_cli(running.hub.settings, "audit", "extract", "--evaluator", "unm-isr",
                      "--identified", "--format", "json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)[0]["case_ref"] == case
