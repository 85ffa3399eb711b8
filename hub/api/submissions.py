"""Agencies submit messages: diversion notices, holds on charges, referral status updates."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.api.deps import CurrentClient, HubDep
from hub.errors import BadInput, Forbidden, NotFound, Problem
from hub.messages import MessageType

router = APIRouter(prefix="/v1/agencies/{agency}", tags=["submissions"])
XML_TYPES = {"application/xml", "text/xml", "application/niem+xml"}

SUBMISSIONS = {
    "diversion-notices": (MessageType.DIVERSION_NOTICE, "diversion.write"),
    "charge-holds": (MessageType.CHARGE_HOLD, "hold.write"),
    "referral-status": (MessageType.REFERRAL_STATUS, "status.write"),
}


async def _submit(kind: str, agency: str, request: Request, hub: HubDep, client: CurrentClient,
                  idempotency_key: str | None) -> JSONResponse:
    message_type, scope = SUBMISSIONS[kind]
    client.require(scope, agency)
    if agency not in hub.site.agencies:
        raise NotFound(f"no agency {agency!r} in site {hub.site.site!r}")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise BadInput("bad Idempotency-Key", [Problem("header:Idempotency-Key",
                                                       "must be 1 to 200 characters")])
    # The body's size and media type were checked before it was read (hub/api/limits.py):
    # XML reaches this point for diversion notices only.
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type.lower() in XML_TYPES:
        subject = request.query_params.get("subject")
        if subject is not None and not subject.isdigit():
            raise BadInput("bad subject", [Problem("query:subject", "a number from 0")])
        hub.intake.check_submitter(agency, message_type)
        body = hub.niem.to_notice(raw, int(subject) if subject is not None else None)
        raw = orjson.dumps(body)
    accepted = await run_in_threadpool(hub.intake.accept, agency, message_type, raw,
                                       idempotency_key)
    return JSONResponse(
        {"message_id": accepted.message_id, "status": "accepted",
         "duplicate": accepted.duplicate},
        status_code=202,
        headers={"Location": f"/v1/agencies/{agency}/messages/{accepted.message_id}"},
    )


def _route(kind: str) -> None:
    async def endpoint(agency: str, request: Request, hub: HubDep, client: CurrentClient,
                       idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        return await _submit(kind, agency, request, hub, client, idempotency_key)

    endpoint.__name__ = f"submit_{kind.replace('-', '_')}"
    router.add_api_route(f"/{kind}", endpoint, methods=["POST"], status_code=202,
                         summary=f"Submit {SUBMISSIONS[kind][0].value}")


for _kind in SUBMISSIONS:
    _route(_kind)


@router.get("/messages/{message_id}", summary="Where a submitted message went (no PHI)")
async def message_status(agency: str, message_id: str, hub: HubDep,
                         client: CurrentClient) -> dict[str, object]:
    if client.agency != agency:
        raise Forbidden("a client may read only its own agency's messages")
    msg = await run_in_threadpool(hub.store.get_message, message_id)
    if msg is None or msg.sender != agency or msg.site != hub.site.site:
        raise NotFound(f"no message {message_id} submitted by {agency}")
    deliveries = await run_in_threadpool(hub.store.deliveries_of, message_id)
    return {"message_id": message_id, "type": msg.type,
            "received_at": msg.received_at.isoformat(),
            "deliveries": [{"recipient": d.recipient, "status": d.status,
                            "attempts": d.attempts} for d in deliveries]}
