"""hub.steps.deliver.keep_only: what is left of a body once denied leaves are removed."""

from __future__ import annotations

import copy
from typing import Any

from consent.decisions import Decision
from hub import PROJECT_ROOT
from hub.classification import FieldValue, load_catalogue
from hub.messages import MessageType
from hub.steps.deliver import keep_only

CATALOGUE = load_catalogue(PROJECT_ROOT / "mappings" / "canonical.yaml")
PERMIT = Decision(permit=True, reason="test permit", legal_basis="test")
DENY = Decision(permit=False, reason="test deny", legal_basis="none")


def notice() -> dict[str, Any]:
    return {
        "pathway": "arrest-diversion",
        "referred_at": "2024-05-01T10:00:00Z",
        "person": {"given_name": "Jane", "family_name": "Doe", "date_of_birth": "1980-02-03"},
        "contact": {"phone": "505-555-0100", "address": "1 Main St"},
        "incident": {
            "report_number": "R-1",
            "occurred_at": "2024-05-01T09:00:00Z",
            "officer": "Ofc. Smith",
            "charges": [
                {"statute": "S-0", "description": "first"},
                {"statute": "S-1", "description": "second"},
                {"statute": "S-2", "description": "third"},
            ],
        },
    }


def hold() -> dict[str, Any]:
    return {"case_ref": "c-1", "status": "held", "decided_at": "2024-05-02T10:00:00Z",
            "conditions": ["first", "second", "third"]}


def gate(
    message_type: MessageType, body: dict[str, Any], denied: set[str]
) -> tuple[dict[str, Any], list[FieldValue]]:
    fields = CATALOGUE.flatten(message_type, body)
    assert denied <= {f.path for f in fields}, "test denies a path the body does not have"
    decisions = [DENY if f.path in denied else PERMIT for f in fields]
    return keep_only(body, fields, decisions), fields


def test_denied_leaf_is_removed_and_siblings_kept() -> None:
    """A denied leaf disappears; the other leaves of its container stay."""
    kept, _ = gate(MessageType.DIVERSION_NOTICE, notice(), {"contact.phone"})
    assert kept["contact"] == {"address": "1 Main St"}
    assert kept["person"] == notice()["person"]


def test_container_left_empty_is_removed() -> None:
    """A container whose every leaf is denied is dropped, not sent empty."""
    kept, _ = gate(MessageType.DIVERSION_NOTICE, notice(), {"contact.phone", "contact.address"})
    assert "contact" not in kept
    assert kept["pathway"] == "arrest-diversion"


def test_list_item_left_empty_is_removed_and_order_kept() -> None:
    """A list item whose leaves are all denied goes; the others stay in their order."""
    denied = {"incident.charges[1].statute", "incident.charges[1].description"}
    kept, _ = gate(MessageType.DIVERSION_NOTICE, notice(), denied)
    assert kept["incident"]["charges"] == [
        {"statute": "S-0", "description": "first"},
        {"statute": "S-2", "description": "third"},
    ]


def test_partly_denied_list_item_keeps_its_other_leaves() -> None:
    """A list item with one denied leaf keeps the rest, in place."""
    kept, _ = gate(MessageType.DIVERSION_NOTICE, notice(), {"incident.charges[0].statute"})
    assert kept["incident"]["charges"] == [
        {"description": "first"},
        {"statute": "S-1", "description": "second"},
        {"statute": "S-2", "description": "third"},
    ]


def test_scalar_list_item_removed_order_kept() -> None:
    """A denied item of a list of values is removed; the rest keep their order."""
    kept, _ = gate(MessageType.CHARGE_HOLD, hold(), {"conditions[1]"})
    assert kept["conditions"] == ["first", "third"]


def test_list_emptied_by_denials_is_removed() -> None:
    """A list whose every item is denied is dropped, and so is a parent left empty."""
    denied = {f"incident.charges[{i}].{k}" for i in range(3) for k in ("statute", "description")}
    denied |= {"incident.report_number", "incident.occurred_at", "incident.officer"}
    kept, _ = gate(MessageType.DIVERSION_NOTICE, notice(), denied)
    assert "incident" not in kept


def test_nothing_denied_returns_same_body() -> None:
    """With no denial the very same body object comes back."""
    body = notice()
    kept, _ = gate(MessageType.DIVERSION_NOTICE, body, set())
    assert kept is body


def test_input_body_is_not_mutated() -> None:
    """Pruning builds a new body and leaves the original as it was."""
    body = notice()
    before = copy.deepcopy(body)
    gate(MessageType.DIVERSION_NOTICE, body, {"contact.phone", "incident.charges[2].statute"})
    assert body == before


def test_kept_body_flattens_to_exactly_the_permitted_leaves() -> None:
    """What is kept is exactly the permitted leaves, with their values."""
    denied = {"person.date_of_birth", "incident.charges[0].description", "contact.address"}
    kept, fields = gate(MessageType.DIVERSION_NOTICE, notice(), denied)
    after = CATALOGUE.flatten(MessageType.DIVERSION_NOTICE, kept)
    assert sorted((f.pattern, f.value) for f in after) == sorted(
        (f.pattern, f.value) for f in fields if f.path not in denied
    )
