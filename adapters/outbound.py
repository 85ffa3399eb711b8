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
    withheld_fields: tuple[str, ...]  # told only to Part 2 programs; empty for anyone else
    part2: bool = False  # Part 2 information is disclosed: the 2.32 notice goes with it
    consents: tuple[tuple[str, str], ...] = ()  # (reference, scope) relied on
    refrain: bool = True  # NORDSCLCD: recipient is not a TPO covered entity
    justice_recipient: bool = False  # 2.12(d) use restriction
    told_withheld: bool = False  # the recipient is a Part 2 program: it is told what it lacks


@dataclass(frozen=True)
class Rendered:
    content_type: str
    document: dict[str, Any]
