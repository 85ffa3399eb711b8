"""FHIR R4 `Consent` in, decision terms out: the hub's reading of a signed release.

The profile (see README, "Registering consents"):
- `patient`: an identifier in `urn:lead-hub:case` (the diversion's case id) or
  `urn:lead-hub:participant`, and `display` with the patient's name;
- `organization`: who may disclose, by identifier in `urn:lead-hub:agency`;
- `policyRule`: the kind, `urn:lead-hub:consent-kind` general | tpo | criminal-justice;
- `provision` (type permit): `actor` (recipients, by agency identifier), `purpose`,
  `class` (data classes, `urn:lead-hub:data-class`), `period`; nested `deny` provisions may
  take classes away;
- extensions for what FHIR R4 has no element for: the revocation statement, an expiry
  event, and (criminal-justice) the time or event after which it may be revoked.
Every element 42 CFR 2.31(a) requires is checked, and every missing one is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from fhir.resources.R4B.consent import Consent as FhirConsent
from pydantic import ValidationError

from consent.engine import unreleasable_problem
from consent.model import FINAL_DISPOSITION, MONITORING_CLASSES, TPO_PURPOSES, ConsentKind
from hub.classification import DataClass
from hub.errors import BadInput, Problem

EXT = "https://lead-hub.example/fhir/StructureDefinition/"
REVOCATION_STATEMENT = EXT + "revocation-statement"
EXPIRY_EVENT = EXT + "expiry-event"
REVOCABLE_AFTER = EXT + "revocable-after"
REVOCATION = EXT + "revocation"
AGENCY_SYSTEM = "urn:lead-hub:agency"
CASE_SYSTEM = "urn:lead-hub:case"
PARTICIPANT_SYSTEM = "urn:lead-hub:participant"
KIND_SYSTEM = "urn:lead-hub:consent-kind"
CLASS_SYSTEM = "urn:lead-hub:data-class"
PROCEEDINGS_PURPOSE = "LEAD-PROCEEDINGS"
CONSENT_CATEGORY = ("http://loinc.org", "59284-0")
FHIR_KINDS = {ConsentKind.GENERAL, ConsentKind.TPO, ConsentKind.CRIMINAL_JUSTICE}
JUSTICE_KINDS = {"police", "prosecutor"}


@dataclass(frozen=True)
class Terms:
    """What a consent resource says, in the engine's words (participant resolved later)."""

    kind: ConsentKind
    patient_system: str
    patient_value: str
    disclosers: frozenset[str]
    recipients: frozenset[str]
    purposes: frozenset[str]
    classes: frozenset[DataClass]
    denied_classes: frozenset[DataClass]
    valid_from: datetime
    valid_until: datetime | None
    signed_at: datetime
    expiry_event: str | None
    revocable_after: datetime | None
    revocable_after_event: str | None


def parse_consent(raw: bytes, content_type: str) -> Any:
    """JSON or XML (application/fhir+xml) body to JSON-shaped data, not yet validated."""
    if content_type.split(";")[0].strip().lower() in ("application/fhir+xml", "application/xml",
                                                      "text/xml"):
        try:
            return FhirConsent.model_validate_xml(raw).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            problems = [Problem("Consent." + ".".join(str(p) for p in e["loc"]), e["msg"])
                        for e in exc.errors()]
            raise BadInput("not a valid FHIR R4 Consent", problems) from None
        except Exception as exc:  # the XML reader raises many kinds of errors
            raise BadInput("body is not a readable FHIR Consent",
                           [Problem("Consent", f"{type(exc).__name__}: cannot parse")]) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body is not valid JSON", [Problem("Consent", str(exc))]) from None


def validate_resource(data: Any) -> dict[str, Any]:
    """Structural FHIR R4 validation; returns the resource as JSON-shaped data."""
    if not isinstance(data, dict) or data.get("resourceType") != "Consent":
        raise BadInput("not a FHIR Consent", [Problem("Consent", "resourceType must be Consent")])
    try:
        model = FhirConsent.model_validate(data)
    except ValidationError as exc:
        problems = [Problem("Consent." + ".".join(str(p) for p in e["loc"]), e["msg"])
                    for e in exc.errors()]
        raise BadInput(f"not a valid FHIR R4 Consent ({len(problems)} problem(s))",
                       problems) from None
    return model.model_dump(mode="json", exclude_none=True)  # type: ignore[no-any-return]


def _ext(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), None)


def _codes(concepts: list[dict[str, Any]], system: str | None = None) -> list[str]:
    return [c["code"] for cc in concepts for c in cc.get("coding", [])
            if "code" in c and (system is None or c.get("system") == system)]


def _agency(ref: dict[str, Any]) -> str | None:
    ident = ref.get("identifier", {})
    return ident.get("value") if ident.get("system") == AGENCY_SYSTEM else None


def _dt(value: str | None) -> datetime | None:
    """A FHIR dateTime with its offset; a bare date (as signed forms often give) is that day, UTC."""
    if not value:
        return None
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else None


def read_terms(resource: dict[str, Any], agencies: dict[str, str]) -> Terms:
    """Check 42 CFR 2.31(a) and (b),(d) and the hub's profile; `agencies` maps id -> kind."""
    p: list[Problem] = []
    if resource.get("status") != "active":
        p.append(Problem("Consent.status", "register consents as 'active'; revoke with $revoke"))
    if "patient-privacy" not in _codes([resource.get("scope", {})]):
        p.append(Problem("Consent.scope", "must be patient-privacy"))
    if CONSENT_CATEGORY[1] not in _codes(resource.get("category", []), CONSENT_CATEGORY[0]):
        p.append(Problem("Consent.category", "must include LOINC 59284-0 (patient consent)"))

    patient = resource.get("patient", {})
    ident = patient.get("identifier", {})
    if not patient.get("display"):
        p.append(Problem("Consent.patient.display", "§2.31(a)(1): the patient's name is required"))
    if ident.get("system") not in (CASE_SYSTEM, PARTICIPANT_SYSTEM) or not ident.get("value"):
        p.append(Problem("Consent.patient.identifier",
                         f"name the patient by an identifier in {CASE_SYSTEM} or "
                         f"{PARTICIPANT_SYSTEM}"))

    disclosers = {_agency(o) for o in resource.get("organization", [])}
    if not disclosers or None in disclosers:
        p.append(Problem("Consent.organization", "§2.31(a)(2): who may disclose, by identifier "
                         f"in {AGENCY_SYSTEM}"))
    unknown = {d for d in disclosers if d and d not in agencies}

    kinds = _codes(resource.get("policyRule") and [resource["policyRule"]] or [], KIND_SYSTEM)
    kind: ConsentKind | None = None
    if len(kinds) != 1 or kinds[0] not in {k.value for k in FHIR_KINDS}:
        p.append(Problem("Consent.policyRule", f"one code in {KIND_SYSTEM}: general, tpo or "
                         "criminal-justice (court orders are entered by a compliance officer)"))
    else:
        kind = ConsentKind(kinds[0])

    if not resource.get("dateTime"):
        p.append(Problem("Consent.dateTime", "§2.31(a)(9): the date the consent was signed"))
    elif _dt(resource["dateTime"]) is None:
        p.append(Problem("Consent.dateTime", "give the time with its UTC offset"))
    if not any(a.get(k) for a in [resource.get("sourceAttachment", {})] for k in ("data", "url")):
        p.append(Problem("Consent.sourceAttachment", "§2.31(a)(8): the signed form (data or url)"))
    statement = _ext(resource, REVOCATION_STATEMENT)
    if not statement or not statement.get("valueString"):
        p.append(Problem(f"Consent.extension({REVOCATION_STATEMENT})",
                         "§2.31(a)(6): the statement of the right to revoke and how"))

    provision = resource.get("provision", {})
    if provision.get("type") != "permit":
        p.append(Problem("Consent.provision.type", "the top-level provision must permit"))
    recipients = {_agency(a.get("reference", {})) for a in provision.get("actor", [])}
    if None in recipients:
        p.append(Problem("Consent.provision.actor", f"name recipients by identifier in "
                         f"{AGENCY_SYSTEM}"))
    recipients.discard(None)
    unknown |= {r for r in recipients if r not in agencies}
    if not recipients and kind != ConsentKind.TPO:
        p.append(Problem("Consent.provision.actor", "§2.31(a)(4): the recipients"))
    if unknown:
        p.append(Problem("Consent", f"no agency {', '.join(sorted(unknown))} in this site"))
    purposes = set(_codes(provision.get("purpose") and
                          [{"coding": provision["purpose"]}] or []))
    if not purposes:
        p.append(Problem("Consent.provision.purpose", "§2.31(a)(5): the purpose of disclosure"))
    if PROCEEDINGS_PURPOSE in purposes and len(purposes) > 1:
        p.append(Problem("Consent.provision.purpose", "§2.31(d): a consent for use in "
                         "proceedings against the patient cannot be combined with another"))
    classes = _classes(provision.get("class", []), "Consent.provision.class", p)
    if not classes:
        p.append(Problem("Consent.provision.class", "§2.31(a)(3): what may be disclosed, as "
                         f"data classes in {CLASS_SYSTEM}"))
    if DataClass.COUNSELING_NOTES in classes and len(classes) > 1:
        p.append(Problem("Consent.provision.class", "§2.31(b): SUD counselling notes need a "
                         "consent of their own"))
    denied: set[DataClass] = set()
    for i, nested in enumerate(provision.get("provision", [])):
        where = f"Consent.provision.provision[{i}]"
        if nested.get("type") != "deny" or set(nested) - {"type", "class"}:
            p.append(Problem(where, "only nested 'deny' provisions by class are supported; "
                             "register a separate consent instead"))
        denied |= _classes(nested.get("class", []), where + ".class", p)

    period = provision.get("period", {})
    valid_from = _dt(period.get("start")) or _dt(resource.get("dateTime"))
    valid_until = _dt(period.get("end"))
    if period.get("end") and valid_until is None:
        p.append(Problem("Consent.provision.period.end", "give the time with its UTC offset"))
    expiry = _ext(resource, EXPIRY_EVENT)
    expiry_event = expiry.get("valueString") if expiry else None
    if valid_until is None and not expiry_event:
        p.append(Problem("Consent.provision.period.end", "§2.31(a)(7): an expiry date, or an "
                         f"expiry event in extension {EXPIRY_EVENT}"))
    revocable = _ext(resource, REVOCABLE_AFTER)
    revocable_after = _dt(revocable.get("valueDateTime")) if revocable else None
    revocable_event = revocable.get("valueCode") if revocable else None

    if kind == ConsentKind.CRIMINAL_JUSTICE:
        _criminal_justice(recipients, agencies, classes, valid_until, revocable_after,
                          revocable_event, p)
    elif kind is not None:
        granted = classes - denied
        problem = unreleasable_problem(kind, {r: granted for r in recipients if r},
                                       agencies)
        if problem:
            p.append(Problem("Consent.provision.class", problem))
    elif revocable:
        p.append(Problem(f"Consent.extension({REVOCABLE_AFTER})",
                         "only a criminal-justice (§2.35) consent may be irrevocable for a time"))
    if kind == ConsentKind.TPO and not purposes <= TPO_PURPOSES:
        p.append(Problem("Consent.provision.purpose", "a TPO consent covers TREAT, HPAYMT and "
                         "HOPERAT only"))
    if p:
        raise BadInput("this Consent cannot be registered", p)
    assert kind is not None and valid_from is not None
    return Terms(
        kind=kind, patient_system=ident["system"], patient_value=ident["value"],
        disclosers=frozenset(d for d in disclosers if d), recipients=frozenset(recipients),
        purposes=frozenset(purposes), classes=frozenset(classes),
        denied_classes=frozenset(denied), valid_from=valid_from, valid_until=valid_until,
        signed_at=_dt(resource["dateTime"]),  # type: ignore[arg-type]
        expiry_event=expiry_event, revocable_after=revocable_after,
        revocable_after_event=revocable_event,
    )


def _classes(codings: list[dict[str, Any]], where: str, p: list[Problem]) -> set[DataClass]:
    """provision.class is a list of Coding in R4."""
    concepts = [{"coding": codings}]
    out = set()
    for code in _codes(concepts, CLASS_SYSTEM):
        try:
            out.add(DataClass(code))
        except ValueError:
            p.append(Problem(where, f"unknown data class {code!r}; one of {', '.join(DataClass)}"))
    if len(_codes(concepts)) != len(_codes(concepts, CLASS_SYSTEM)):
        p.append(Problem(where, f"classes must be codes in {CLASS_SYSTEM}"))
    return out


def _criminal_justice(recipients: set[str | None], agencies: dict[str, str],
                      classes: set[DataClass], valid_until: datetime | None,
                      revocable_after: datetime | None, revocable_event: str | None,
                      p: list[Problem]) -> None:
    not_justice = {r for r in recipients if r in agencies and agencies[r] not in JUSTICE_KINDS}
    if not_justice:
        p.append(Problem("Consent.provision.actor", "§2.35: recipients must be the justice "
                         f"agencies that monitor the patient; not {', '.join(sorted(not_justice))}"))
    if not classes <= MONITORING_CLASSES:
        p.append(Problem("Consent.provision.class", "§2.35: only what monitoring needs "
                         "(referral, engagement)"))
    if valid_until is None:
        p.append(Problem("Consent.provision.period.end", "§2.35: a stated, reasonable duration"))
    if revocable_after is None and revocable_event != FINAL_DISPOSITION:
        p.append(Problem(f"Consent.extension({REVOCABLE_AFTER})", "§2.35: when it becomes "
                         f"revocable: valueDateTime, or valueCode '{FINAL_DISPOSITION}'"))


def consent_resource(
    *, case_ref: str, patient_name: str, discloser: str, recipients: list[str],
    kind: ConsentKind, purposes: list[str], classes: list[str], signed_at: datetime,
    valid_until: datetime | None = None, expiry_event: str | None = None,
    revocable_after: datetime | str | None = None, denied_classes: list[str] | None = None,
    signed_form_url: str = "https://provider.example/consents/signed.pdf",
) -> dict[str, Any]:
    """A Consent resource in the hub's profile (for case-management tools, the demo, tests)."""
    purpose_system = {"TREAT": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                      "HPAYMT": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                      "HOPERAT": "http://terminology.hl7.org/CodeSystem/v3-ActReason"}
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {"start": signed_at.isoformat(),
                   **({"end": valid_until.isoformat()} if valid_until else {})},
        "actor": [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP"}]}, "reference": {"identifier": {"system": AGENCY_SYSTEM,
                                                            "value": r}}}
                  for r in recipients],
        "purpose": [{"system": purpose_system.get(p, "urn:lead-hub:purpose"), "code": p}
                    for p in purposes],
        "class": [{"system": CLASS_SYSTEM, "code": c} for c in classes],
    }
    if denied_classes:
        provision["provision"] = [{"type": "deny", "class": [
            {"system": CLASS_SYSTEM, "code": c} for c in denied_classes]}]
    extensions: list[dict[str, Any]] = [{
        "url": REVOCATION_STATEMENT,
        "valueString": "You may revoke this consent at any time, in writing or electronically, "
                       "by telling your case manager, except as 42 CFR 2.35 provides."}]
    if expiry_event:
        extensions.append({"url": EXPIRY_EVENT, "valueString": expiry_event})
    if isinstance(revocable_after, datetime):
        extensions.append({"url": REVOCABLE_AFTER, "valueDateTime": revocable_after.isoformat()})
    elif revocable_after:
        extensions.append({"url": REVOCABLE_AFTER, "valueCode": revocable_after})
    return {
        "resourceType": "Consent",
        "extension": extensions,
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": CONSENT_CATEGORY[0], "code": CONSENT_CATEGORY[1]}]}],
        "patient": {"identifier": {"system": CASE_SYSTEM, "value": case_ref},
                    "display": patient_name},
        "dateTime": signed_at.isoformat(),
        "organization": [{"identifier": {"system": AGENCY_SYSTEM, "value": discloser}}],
        "sourceAttachment": {"contentType": "application/pdf", "url": signed_form_url,
                             "title": "Signed release of information"},
        "policyRule": {"coding": [{"system": KIND_SYSTEM, "code": kind.value}]},
        "provision": provision,
    }
