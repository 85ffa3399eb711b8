"""Inboxes for agencies that pull: each agency reads and acknowledges only its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, update
from sqlmodel import select

from hub.crypto import Sealer
from hub.db.session import unit_of_work
from hub.db.tables import InboxItem, utcnow
from hub.errors import NotFound


@dataclass(frozen=True)
class InboxMessage:
    id: str
    message_id: str
    created_at: str
    payload: dict[str, Any]


class Inbox:
    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer

    def item(self, site: str, agency: str, delivery_id: str, message_id: str, payload: bytes) -> InboxItem:
        return InboxItem(
            id=delivery_id, site=site, agency=agency, message_id=message_id,
            payload=self._sealer.seal(payload),
        )

    def pending(self, site: str, agency: str, limit: int = 100) -> list[InboxMessage]:
        with unit_of_work(self._engine) as s:
            rows = s.exec(
                select(InboxItem)
                .where(
                    InboxItem.site == site,
                    InboxItem.agency == agency,
                    InboxItem.acked_at.is_(None),  # type: ignore[union-attr]
                )
                .order_by(InboxItem.created_at)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            return [
                InboxMessage(r.id, r.message_id, r.created_at.isoformat(),
                             orjson.loads(self._sealer.open(r.payload)))
                for r in rows
            ]

    def ack(self, site: str, agency: str, item_id: str) -> None:
        with unit_of_work(self._engine) as s:
            result = s.execute(
                update(InboxItem)
                .where(
                    InboxItem.id == item_id,  # type: ignore[arg-type]
                    InboxItem.site == site,  # type: ignore[arg-type]
                    InboxItem.agency == agency,  # type: ignore[arg-type]
                )
                .values(acked_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no inbox item {item_id} for agency {agency}")
