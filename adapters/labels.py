"""What travels with every disclosure: the 42 CFR 2.32 notice and DS4P security labels."""

from __future__ import annotations

from typing import Any

# 42 CFR 2.32(a)(2): the short form of the notice.
PART2_NOTICE = "42 CFR part 2 prohibits unauthorized use or disclosure of these records."
# 42 CFR 2.12(d): what police and the DA must be told of what they receive.
NON_EVIDENTIARY = ("These records may not be used to initiate or substantiate any criminal "
                   "charges against the patient or to conduct any criminal investigation of "
                   "the patient (42 CFR 2.12(d)).")

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def security_labels(refrain: bool, part2: bool = True) -> list[dict[str, Any]]:
    """Part 2 records: restricted, 42 CFR Part 2, SUD, and no redisclosure unless the
    recipient is a TPO covered entity. Anything else the hub carries (police, DA and
    community information) is criminal-justice information: restricted, and no more."""
    restricted = {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}
    if not part2:
        return [restricted]
    labels = [
        restricted,
        {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
        {"system": ACT_CODE, "code": "SUD", "display": "substance use disorder information "
                                                    "sensitivity"},
    ]
    if refrain:
        labels.append({"system": ACT_CODE, "code": "NORDSCLCD",
                       "display": "no redisclosure without consent directive"})
    return labels
