"""JSON envelope for agency systems that are not FHIR servers (police RMS, DA case system)."""

from __future__ import annotations

from typing import Any

from adapters.outbound import DeliveryMeta, Rendered


def render(form: str, body: dict[str, Any], meta: DeliveryMeta) -> Rendered:
    return Rendered(
        "application/json",
        {
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
            "withheld_fields": list(meta.withheld_fields),
        },
    )
