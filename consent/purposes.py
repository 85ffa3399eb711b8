"""The purposes a disclosure may be made for: one table, read by the accounting and the README.

TPO purposes are HL7 v3-ActReason codes; the others have no standard code and use the
hub's own system, `urn:lead-hub:purpose`.
"""

from __future__ import annotations

from dataclasses import dataclass

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
HUB_PURPOSE = "urn:lead-hub:purpose"


@dataclass(frozen=True)
class Purpose:
    code: str
    system: str
    text: str
    rule: str  # where the law speaks to it


PURPOSES = {p.code: p for p in (
    Purpose("TREAT", ACT_REASON, "treatment", "42 CFR 2.33(b); 45 CFR 164.506"),
    Purpose("HPAYMT", ACT_REASON, "payment", "42 CFR 2.33(b); 45 CFR 164.506"),
    Purpose("HOPERAT", ACT_REASON, "health care operations", "42 CFR 2.33(b); 45 CFR 164.506"),
    Purpose("LEAD-CJ-MONITORING", HUB_PURPOSE,
            "criminal-justice monitoring of LEAD participation (2.35)", "42 CFR 2.35"),
    Purpose("LEAD-CHARGE-DECISION", HUB_PURPOSE, "the DA's decision on holding charges",
            "not a Part 2 record: the site's LEAD interagency agreement"),
    Purpose("LEAD-PROCEEDINGS", HUB_PURPOSE,
            "use in civil, criminal, administrative or legislative proceedings against the "
            "patient (2.31(d)); a consent for it may name no other purpose",
            "42 CFR 2.31(d), 2.12(d)"),
)}


def purpose_text(code: str) -> str:
    """The purpose in words, or the code itself when the hub does not know it."""
    known = PURPOSES.get(code)
    return known.text if known else code
