"""The court-order form: from what the officer typed to the registry's court order.

Validation is the API's (`hub.api.consents.CourtOrder`) and then the registry's; every
problem comes back named by the form field it belongs to, never as a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from hub.api.consents import CourtOrder
from hub.bootstrap import Hub
from hub.errors import BadInput, Problem

LABELS = {
    "case_ref": "Case id", "court": "Court", "docket": "Docket number",
    "issued_at": "Issued", "valid_until": "Valid until", "disclosers": "Who may disclose",
    "recipients": "Recipients", "purposes": "Purposes", "classes": "Data classes",
    "order_document_url": "Link to the signed order", "entered_by": "Entered by",
}
LISTS = ("disclosers", "recipients", "purposes", "classes")


def field_of(path: str) -> str:
    """The form field a problem's path points at ('$.classes[0]' is 'classes')."""
    name = path.removeprefix("$.").split("[", 1)[0].split(".", 1)[0]
    if "patient" in path:
        return "case_ref"
    return name if name in LABELS else ""


def purposes_offered(hub: Hub) -> list[str]:
    return sorted({t.purpose for r in hub.site.routes for t in r.deliver})


def values_of(form: Mapping[str, Any], getlist: Any) -> dict[str, Any]:
    """The form as typed, to show again beside its problems."""
    values: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in LABELS if k not in LISTS}
    for k in LISTS:
        values[k] = [str(v) for v in getlist(k) if str(v).strip()]
    values["other_purposes"] = str(form.get("other_purposes", "")).strip()
    return values


def _aware(text: str, tz_name: str) -> str:
    """A datetime-local value ('2025-01-31T09:30') read in the site's time zone."""
    if not text:
        return text
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text  # CourtOrder names it
    return (when if when.tzinfo else when.replace(tzinfo=ZoneInfo(tz_name))).isoformat()


def court_order(hub: Hub, values: dict[str, Any]) -> dict[str, Any]:
    """The order to hand to the registry, or BadInput naming each field that is wrong."""
    purposes = values["purposes"] + [p.strip() for p in values["other_purposes"].split(",")
                                     if p.strip()]
    data = {**{k: v for k, v in values.items() if k in LABELS},
            "purposes": list(dict.fromkeys(purposes)),
            "issued_at": _aware(values["issued_at"], hub.site.timezone),
            "valid_until": _aware(values["valid_until"], hub.site.timezone)}
    try:
        return CourtOrder.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise BadInput("this court order cannot be entered", [
            Problem(str(e["loc"][0]) if e["loc"] else "", e["msg"]) for e in exc.errors()
        ]) from None
