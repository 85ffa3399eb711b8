"""The deliver step's contract with the adapters: what one delivery carries (DeliveryMeta),
what a recipient's system receives (Rendered), and how it is rendered and sent. The
adapters implement these; the wiring place hands them to the step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


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


# form (e.g. "referral"), the body as permitted, the delivery's metadata -> the payload
Render = Callable[[str, dict[str, Any], DeliveryMeta], Rendered]


class Push(Protocol):
    """Sends a rendered delivery; answers the recipient's HTTP status or raises a hub error."""

    def push(self, url: str, rendered: Rendered, delivery_id: str, message_id: str) -> int: ...
