"""What a recipient's system receives: the rendered payload for one delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeliveryMeta:
    delivery_id: str
    message_id: str
    case_ref: str
    participant_ref: str | None
    site: str
    sender: str
    sender_name: str
    recipient: str
    purpose: str
    sent_at: str
    withheld_fields: tuple[str, ...]


@dataclass(frozen=True)
class Rendered:
    content_type: str
    document: dict[str, Any]
