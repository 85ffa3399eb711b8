"""`hub demo` runs the whole story against the real broker and database."""

from __future__ import annotations

from hub.settings import Settings
from tests.harness import hub_cli


def test_demo_exits_zero_and_partners_received_bundle_and_notice(settings: Settings) -> None:
    """The EHR got the Bundle, the DA the notice; consent lets status through until revoked."""
    result = hub_cli(settings, "demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "RESULT: everything expected arrived" in out
    assert "Partners received: provider EHR 3 FHIR Bundle(s); DA 2 message(s)" in out
    assert "[referral, purpose TREAT]: DELIVERED" in out
    assert "registered the participant's 42 CFR 2.35 consent" in out
    assert "asked to revoke: HTTP 409" in out and "Revocation again: HTTP 200" in out
    timeline = out.split("Timeline (from the ledger):")[1]
    no_consent, under, after = (timeline.split("status '")[i] for i in (1, 2, 3))
    assert "First Judicial District Attorney [referral-status, purpose LEAD-CJ-MONITORING]: " \
           "WITHHELD" in no_consent and "R1: Part 2 record and no consent on file" in no_consent
    assert "DELIVERED, 3 field(s) sent, 1 withheld" in under
    assert "sent case_ref, status, occurred_at under Consent/" in under
    assert "withheld plan_summary: R5/R6" in under
    assert "DELIVERED" not in after and "was revoked at" in after
