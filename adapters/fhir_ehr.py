"""FHIR R4 for treatment providers' EHRs: referrals out as transaction Bundles.

A referral follows the Gravity SDOH closed-loop pattern: a `ServiceRequest` for what is
asked, a `Task` whose status closes the loop, and the `Patient`. Entries use conditional
create on hub identifiers, so a re-sent Bundle creates nothing twice on a FHIR server.
Bundles are built as plain dicts and validated against the R4B models; they are serialised
from the dict, never re-serialised through the models.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from adapters.labels import security_labels
from hub.errors import PermanentError
from hub.outbound import DeliveryMeta, Rendered

CASE_SYSTEM = "urn:lead-hub:case"
DELIVERY_SYSTEM = "urn:lead-hub:delivery"
STATE_ID_SYSTEM = "urn:lead-hub:state-id"
PARTICIPANT_SYSTEM = "urn:lead-hub:participant"
FHIR_JSON = "application/fhir+json"


def _entry(resource: dict[str, Any], full_url: str, if_none_exist: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"],
                    "ifNoneExist": if_none_exist},
    }


def _patient(body: dict[str, Any], meta: DeliveryMeta) -> dict[str, Any]:
    person = body["person"]
    ident = ({"system": PARTICIPANT_SYSTEM, "value": meta.participant_ref} if meta.participant_ref
             else {"system": CASE_SYSTEM, "value": meta.case_ref})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [ident],
        "name": [{"family": person["family_name"], "given": [person["given_name"]]}],
        "birthDate": person["date_of_birth"],
    }
    if person.get("state_id"):
        patient["identifier"].append({"system": STATE_ID_SYSTEM, "value": person["state_id"]})
    if person.get("gender"):
        patient["gender"] = person["gender"]
    contact = body.get("contact") or {}
    if contact.get("phone"):
        patient["telecom"] = [{"system": "phone", "value": contact["phone"]}]
    if contact.get("address"):
        patient["address"] = [{"text": contact["address"]}]
    return patient


def referral_bundle(body: dict[str, Any], meta: DeliveryMeta) -> dict[str, Any]:
    pat_url, sr_url, task_url = (f"urn:uuid:{meta.delivery_id[:-1]}{n}" for n in "abc")
    case_ident = f"{CASE_SYSTEM}|{meta.case_ref}"
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": CASE_SYSTEM, "value": meta.case_ref}],
        "status": "active",
        "intent": "order",
        "category": [{"text": "LEAD case management and treatment referral"}],
        "code": {"text": f"LEAD referral ({body['pathway']})"},
        "subject": {"reference": pat_url},
        "authoredOn": body["referred_at"],
        "requester": {"display": body.get("referring_agency", meta.sender_name)},
    }
    if body.get("referral_reason"):
        service_request["reasonCode"] = [{"text": body["referral_reason"]}]
    task = {
        "resourceType": "Task",
        "identifier": [{"system": DELIVERY_SYSTEM, "value": meta.delivery_id},
                       {"system": CASE_SYSTEM, "value": meta.case_ref}],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                             "code": "fulfill"}]},
        "focus": {"reference": sr_url},
        "for": {"reference": pat_url},
        "authoredOn": meta.sent_at,
        "requester": {"display": "LEAD Hub"},
    }
    patient = _patient(body, meta)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(patient, pat_url, "identifier={system}|{value}".format(**patient["identifier"][0])),
            _entry(service_request, sr_url, f"identifier={case_ident}"),
            _entry(task, task_url, f"identifier={DELIVERY_SYSTEM}|{meta.delivery_id}"),
        ],
    }


def hold_bundle(body: dict[str, Any], meta: DeliveryMeta) -> dict[str, Any]:
    """A DA hold decision, as a Communication about the referral."""
    lines = [f"Charge hold status: {body['status']}"]
    if body.get("hold_deadline"):
        lines.append(f"Hold deadline: {body['hold_deadline']}")
    lines += [f"Condition: {c}" for c in body.get("conditions", [])]
    communication = {
        "resourceType": "Communication",
        "identifier": [{"system": DELIVERY_SYSTEM, "value": meta.delivery_id}],
        "status": "completed",
        "category": [{"text": "LEAD charge hold"}],
        "about": [{"identifier": {"system": CASE_SYSTEM, "value": meta.case_ref}}],
        "sent": meta.sent_at,
        "sender": {"display": meta.sender_name},
        "payload": [{"contentString": "\n".join(lines)}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(communication, f"urn:uuid:{meta.delivery_id}",
                         f"identifier={DELIVERY_SYSTEM}|{meta.delivery_id}")],
    }


RENDERERS = {"referral": referral_bundle, "charge-hold": hold_bundle}


def render(form: str, body: dict[str, Any], meta: DeliveryMeta, validate: bool = True) -> Rendered:
    build = RENDERERS.get(form)
    if build is None:
        raise PermanentError(f"no FHIR rendering for {form}; route it to a JSON endpoint")
    bundle = build(body, meta)
    # DS4P labels on the Bundle and on each resource, so they survive the Bundle's unpacking
    labels = security_labels(meta.refrain, part2=meta.part2)
    bundle["meta"] = {"security": labels}
    for entry in bundle["entry"]:
        entry["resource"]["meta"] = {"security": labels}
    if validate:
        try:
            Bundle.model_validate(bundle)
        except ValidationError as exc:
            where = "; ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
            raise PermanentError(f"FHIR Bundle for {form} fails R4B validation at {where}") from None
    return Rendered(FHIR_JSON, bundle)
