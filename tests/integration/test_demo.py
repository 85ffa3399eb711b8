"""`hub demo` runs the whole story against the real broker and database."""

from __future__ import annotations

from hub.settings import Settings
from tests.harness import hub_cli


def test_demo_exits_zero_and_partners_received_bundle_and_notice(settings: Settings) -> None:
    """The EHR got the Bundle, the DA the notice; consent lets status through until revoked."""
    result = hub_cli(settings, "demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_story(result.stdout)
    # again on the same database: the same person, a new case, the same story (its 2.35
    # consent is bound to the new case, so the first case's disposition does not release it)
    again = hub_cli(settings, "demo", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    _check_story(again.stdout)


def _check_story(out: str) -> None:
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


def test_accounting_for_the_demo_patient_lists_every_disclosure_in_three_formats(
    settings: Settings,
) -> None:
    """After the demo, `hub audit report` accounts for all 7 disclosures and 5 withholdings."""
    import csv
    import io
    import json
    import re

    from fhir.resources.R4B.bundle import Bundle

    demo = hub_cli(settings, "demo", timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    case = re.search(r"arrest diversion notice -> message (\S+)", demo.stdout).group(1)  # type: ignore[union-attr]

    report = hub_cli(settings, "audit", "report", "--case", case)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    groups = {(d["recipient"]["id"], d["purpose"]): d for d in data["disclosures"]}
    assert {k: d["count"] for k, d in groups.items()} == {
        ("provider", "TREAT"): 3, ("da", "LEAD-CHARGE-DECISION"): 1,
        ("sfpd", "LEAD-CHARGE-DECISION"): 2, ("da", "LEAD-CJ-MONITORING"): 1}
    monitoring = groups[("da", "LEAD-CJ-MONITORING")]
    assert [f["path"] for f in monitoring["fields"]] == ["case_ref", "status", "occurred_at"]
    assert monitoring["withheld_fields"][0]["path"] == "plan_summary"
    assert monitoring["legal_basis"][0]["reference"].startswith("Consent/")
    assert monitoring["legal_basis"][0]["kind"] == "consent"
    assert monitoring["outcome"] == "accepted"
    assert monitoring["notice"] == "2.32(a)(2) short"
    assert groups[("da", "LEAD-CHARGE-DECISION")]["recipient"]["address"] == \
        "327 Sandoval St, Santa Fe, NM 87501"
    referral = groups[("provider", "TREAT")]
    assert "person.family_name" in [f["path"] for f in referral["fields"]]
    assert len(data["withheld"]) == 5
    assert all(w["reason"] for w in data["withheld"])
    assert any("revoked" in r for w in data["withheld"] for r in w["reason"])

    as_csv = hub_cli(settings, "audit", "report", "--case", case, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(r["kind"] for r in rows) == ["disclosed"] * 4 + ["withheld"] * 5
    assert sum(int(r["count"]) for r in rows if r["kind"] == "disclosed") == 7

    as_fhir = hub_cli(settings, "audit", "report", "--case", case, "--format", "fhir")
    bundle = Bundle.model_validate(json.loads(as_fhir.stdout))
    assert len(bundle.entry) == 12
    assert {e.resource.get_resource_type() for e in bundle.entry} == {"AuditEvent"}
