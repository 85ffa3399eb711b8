"""Agencies without an endpoint pull their deliveries here, and acknowledge them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from hub.api.deps import CurrentClient, HubDep

router = APIRouter(prefix="/v1/agencies/{agency}/inbox", tags=["inbox"])


@router.get("", summary="Unacknowledged deliveries for this agency, oldest first")
async def read_inbox(agency: str, hub: HubDep, client: CurrentClient,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, object]:
    client.require("inbox.read", agency)
    items = await run_in_threadpool(hub.inbox.pending, hub.site.site, agency, limit)
    return {"items": [{"id": i.id, "message_id": i.message_id, "created_at": i.created_at,
                       "payload": i.payload} for i in items]}


@router.post("/{item_id}/ack", status_code=204, summary="Acknowledge one delivery")
async def ack(agency: str, item_id: str, hub: HubDep, client: CurrentClient) -> None:
    client.require("inbox.read", agency)
    await run_in_threadpool(hub.inbox.ack, hub.site.site, agency, item_id)
