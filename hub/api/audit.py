"""Accounting of disclosures over HTTP, for compliance officers' tools."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hub import ledger_events
from hub.accounting import build_accounting
from hub.api.deps import CurrentClient, HubDep
from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.tables import Participant
from hub.errors import BadInput, Forbidden, NotFound, Problem
from hub.site import AgencyKind

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def resolve_participant(hub: Hub, participant: str | None, case: str | None) -> str:
    """The participant named directly, or through a case (the diversion notice's id)."""
    if bool(participant) == bool(case):
        raise BadInput("name the patient", [Problem("query", "give participant or case, not both")])
    if case:
        found = hub.store.case(hub.site.site, case)
        if found is None or found.participant_id is None:
            raise NotFound(f"no case {case} at this site")
        return found.participant_id
    with unit_of_work(hub.engine) as s:
        known = s.get(Participant, participant)
    if known is None or known.site != hub.site.site:
        raise NotFound(f"no participant {participant} at this site")
    return known.id


def period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(timezone.utc)
    start = start or end - timedelta(days=3 * 365)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise BadInput("bad period", [Problem(name, "give the UTC offset")])
    return start, end


@router.get("/accounting", summary="Accounting of disclosures for one patient (JSON, CSV, FHIR)")
async def accounting(
    hub: HubDep, client: CurrentClient,
    participant: str | None = None, case: str | None = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    format: Literal["json", "csv", "fhir"] = "json",  # noqa: A002 (the query parameter's name)
) -> Response:
    client.require("audit.read", client.agency)
    if hub.site.agencies[client.agency].kind != AgencyKind.COMPLIANCE:
        raise Forbidden("accountings are for compliance officers")
    pid = await run_in_threadpool(resolve_participant, hub, participant, case)
    start, end = period(start, end)
    report = await run_in_threadpool(build_accounting, hub, pid, start, end)
    await run_in_threadpool(
        lambda: ledger_events.record(
            hub.engine, hub.chain, site=hub.site.site, kind=ledger_events.VIEWED,
            actor=f"api:{client.client_id}", subject=f"accounting ({format})",
            reason="accounting of disclosures requested", participant_id=pid))
    if format == "csv":
        return Response(report.to_csv(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="accounting-'
                                                        f'{pid}.csv"'})
    if format == "fhir":
        return JSONResponse(await run_in_threadpool(report.to_fhir),
                            media_type="application/fhir+json")
    return JSONResponse(report.to_json())
