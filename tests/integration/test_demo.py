"""`hub demo` runs the whole story against the real broker and database."""

from __future__ import annotations

from hub.settings import Settings
from tests.harness import hub_cli


def test_demo_exits_zero_and_partners_received_bundle_and_notice(settings: Settings) -> None:
    """The demo's stand-in EHR got the FHIR Bundle, the DA the notice, and status was withheld."""
    result = hub_cli(settings, "demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "RESULT: everything expected arrived" in out
    assert "Partners received: provider EHR 2 FHIR Bundle(s); DA 1 message(s)" in out
    assert "[referral, purpose TREAT]: DELIVERED" in out
    assert "[referral-status, purpose LEAD-CJ-MONITORING]: WITHHELD" in out
    assert "R1: Part 2 record and no consent on file" in out
