"""JSON envelope for agency systems that are not FHIR servers (police RMS, DA case system)."""

from __future__ import annotations

from typing import Any

from adapters.labels import NON_EVIDENTIARY, PART2_NOTICE, security_labels
from hub.outbound import DeliveryMeta, Rendered


def render(form: str, body: dict[str, Any], meta: DeliveryMeta) -> Rendered:
    document = {
            "hub_message_id": meta.message_id,
            "delivery_id": meta.delivery_id,
            "case_ref": meta.case_ref,
            "type": form,
            "site": meta.site,
            "from": {"agency": meta.sender, "name": meta.sender_name},
            "to": meta.recipient,
            "purpose": meta.purpose,
            "sent_at": meta.sent_at,
            "body": body,
    }
    if meta.told_withheld:
        document["withheld_fields"] = list(meta.withheld_fields)
    if meta.part2:
        document["part2"] = {
            "notice": PART2_NOTICE,
            "consents": [{"reference": ref, "scope": scope} for ref, scope in meta.consents],
            "security_labels": [label["code"] for label in security_labels(meta.refrain)],
        }
        if meta.justice_recipient:
            document["part2"]["use_restriction"] = NON_EVIDENTIARY
    return Rendered("application/json", document)
