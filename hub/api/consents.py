"""FHIR Consent registry endpoints and court-order entry. Errors answer as OperationOutcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from consent.fhir_consent import parse_consent
from hub import ledger_events
from hub.api.deps import CurrentClient, HubDep
from hub.api.problems import FHIR_JSON
from hub.auth import Principal
from hub.bootstrap import Hub
from hub.errors import BadInput, Forbidden, Problem
from hub.site import AgencyKind

router = APIRouter(tags=["consent"])
REGISTRARS = {AgencyKind.TREATMENT, AgencyKind.COMPLIANCE}


def _registrar(hub: Hub, client: Principal) -> str | None:
    """The program whose consents this client may keep, or None for a compliance officer
    (who may keep any). A program sees and changes only the consents it holds."""
    client.require("consent.write", client.agency)
    kind = hub.site.agencies[client.agency].kind
    if kind not in REGISTRARS:
        raise Forbidden("only treatment programs and compliance officers keep consents")
    return None if kind == AgencyKind.COMPLIANCE else client.agency


async def _json(request: Request) -> Any:
    return parse_consent(await request.body(),
                         request.headers.get("content-type", "application/fhir+json"))


def _fhir(body: Any, status: int = 200, location: str | None = None) -> JSONResponse:
    headers = {"Location": location} if location else None
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


@router.post("/fhir/Consent", status_code=201, summary="Register a consent (FHIR R4 Consent)")
async def create(request: Request, hub: HubDep, client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    reg = await run_in_threadpool(hub.registry.register, await _json(request), client.client_id,
                                  holder)
    return _fhir(reg.resource, 201, f"/fhir/Consent/{reg.consent_id}/_history/{reg.version}")


@router.put("/fhir/Consent/{consent_id}", summary="A new version of a consent")
async def update(consent_id: str, request: Request, hub: HubDep,
                 client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    reg = await run_in_threadpool(hub.registry.update, consent_id, await _json(request),
                                  client.client_id, holder)
    return _fhir(reg.resource, 200, f"/fhir/Consent/{consent_id}/_history/{reg.version}")


@router.get("/fhir/Consent/{consent_id}", summary="The current version")
async def read(consent_id: str, hub: HubDep, client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    return _fhir(await run_in_threadpool(hub.registry.read, consent_id, None, holder))


@router.get("/fhir/Consent/{consent_id}/_history/{version}", summary="One version")
async def vread(consent_id: str, version: int, hub: HubDep, client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    return _fhir(await run_in_threadpool(hub.registry.read, consent_id, version, holder))


@router.get("/fhir/Consent/{consent_id}/_history", summary="Every version, newest first")
async def history(consent_id: str, hub: HubDep, client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    versions = await run_in_threadpool(hub.registry.history, consent_id, holder)
    return _fhir({"resourceType": "Bundle", "type": "history", "total": len(versions),
                  "entry": [{"fullUrl": f"Consent/{consent_id}/_history/"
                                        f"{v['meta']['versionId']}", "resource": v}
                            for v in versions]})


def _parameter(params: Any, name: str) -> Any:
    if not isinstance(params, dict) or params.get("resourceType") != "Parameters":
        raise BadInput("send a FHIR Parameters resource",
                       [Problem("Parameters", "resourceType must be Parameters")])
    for p in params.get("parameter", []):
        if p.get("name") == name:
            return next((v for k, v in p.items() if k.startswith("value")), None)
    return None


@router.post("/fhir/Consent/{consent_id}/$revoke",
             summary="Revoke: Parameters method (written|electronic), revokedBy, revokedAt?")
async def revoke(consent_id: str, request: Request, hub: HubDep,
                 client: CurrentClient) -> JSONResponse:
    holder = _registrar(hub, client)
    params = await _json(request)
    at_text = _parameter(params, "revokedAt")
    try:
        at = datetime.fromisoformat(at_text) if at_text else None
    except ValueError:
        raise BadInput("bad revokedAt", [Problem("Parameters.revokedAt", "a dateTime")]) from None
    if at is not None and at.tzinfo is None:
        raise BadInput("bad revokedAt", [Problem("Parameters.revokedAt", "give the UTC offset")])
    reg = await run_in_threadpool(hub.registry.revoke, consent_id,
                                  str(_parameter(params, "method") or ""),
                                  str(_parameter(params, "revokedBy") or ""),
                                  client.client_id, at, holder)
    return _fhir(reg.resource)


class CourtOrder(BaseModel):
    """An authorising court order (42 CFR Part 2 Subpart E), as a compliance officer enters it."""

    model_config = ConfigDict(extra="forbid")
    case_ref: str = Field(min_length=1, max_length=120)
    court: str = Field(min_length=1, max_length=200)
    docket: str = Field(min_length=1, max_length=120)
    issued_at: AwareDatetime
    valid_until: AwareDatetime
    disclosers: list[str] = Field(min_length=1)
    recipients: list[str] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    order_document_url: str = Field(min_length=1, max_length=500)
    entered_by: str = Field(min_length=1, max_length=200)


@router.post("/v1/court-orders", status_code=201, tags=["consent"],
             summary="Enter a court order that authorises named disclosures (compliance officers)")
async def court_order(order: CourtOrder, hub: HubDep, client: CurrentClient) -> dict[str, Any]:
    client.require("court-order.write", client.agency)
    if hub.site.agencies[client.agency].kind != AgencyKind.COMPLIANCE:
        raise Forbidden("court orders are entered by a compliance officer; a subpoena alone "
                        "authorises nothing (42 CFR 2.61)")
    reg = await run_in_threadpool(hub.registry.add_court_order, order.model_dump(mode="json"),
                                  client.client_id)
    return {"id": reg.consent_id, "version": reg.version,
            "reference": f"CourtOrder/{reg.consent_id}/_history/{reg.version}",
            "url": f"/v1/court-orders/{reg.consent_id}"}


@router.get("/v1/court-orders/{order_id}", tags=["consent"],
            summary="A court order on file, as entered (compliance officers)")
async def read_court_order(order_id: str, hub: HubDep, client: CurrentClient) -> dict[str, Any]:
    if not client.scopes & {"audit.read", "court-order.write"}:
        raise Forbidden("reading a court order needs the 'audit.read' or 'court-order.write' scope")
    if hub.site.agencies[client.agency].kind != AgencyKind.COMPLIANCE:
        raise Forbidden("court orders are read by compliance officers")
    found = await run_in_threadpool(hub.registry.court_order, order_id)
    # The order names a case, so reading it is a view of participant information.
    await run_in_threadpool(
        lambda: ledger_events.record(
            hub.engine, hub.chain, site=hub.site.site, kind=ledger_events.VIEWED,
            actor=f"api:{client.client_id}", subject=f"court order {order_id}",
            reason="court order read", participant_id=found.participant_id))
    order = {k: v for k, v in found.order.items() if k != "resourceType"}
    return {"id": found.id, "version": found.version, "kind": "court-order",
            "reference": f"CourtOrder/{found.id}/_history/{found.version}",
            "status": found.status, "recorded_at": found.recorded_at.isoformat(),
            "recorded_by": found.recorded_by, **order}

