"""FHIR endpoints for providers' EHRs: a Task update becomes a referral status message.

Errors here answer as FHIR `OperationOutcome`, as a FHIR client expects.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from adapters.fhir_task import parse_task, task_to_status
from hub.api.deps import CurrentClient, HubDep
from hub.api.problems import FHIR_JSON, fhir_error, outcome
from hub.errors import BadInput, HubError, Problem
from hub.messages import MessageType

router = APIRouter(prefix="/fhir", tags=["fhir"])


async def _accept_task(request: Request, hub: HubDep, client: CurrentClient,
                       idempotency_key: str | None) -> JSONResponse:
    try:
        client.require("status.write", client.agency)
        hub.intake.check_submitter(client.agency, MessageType.REFERRAL_STATUS)
        raw = await request.body()
        task = parse_task(raw, request.headers.get("content-type", FHIR_JSON))
        body = task_to_status(task, hub.task_mapping)
        accepted = await run_in_threadpool(hub.intake.accept, client.agency,
                                           MessageType.REFERRAL_STATUS, orjson.dumps(body),
                                           idempotency_key)
    except BadInput as exc:
        # canonical paths ($.case_ref) are the Task's identifiers to the sender
        problems = [Problem(p.path.replace("$.case_ref", "Task.identifier"), p.message)
                    for p in exc.problems]
        return fhir_error(BadInput(exc.title, problems))
    except HubError as exc:
        return fhir_error(exc)
    response = outcome(202, [("information", "informational",
                              f"accepted as referral status message {accepted.message_id}",
                              None)])
    response.headers["X-Hub-Message-Id"] = accepted.message_id
    return response


@router.post("/Task", status_code=202,
             summary="A provider's Task update (JSON or XML) as referral status")
async def post_task(request: Request, hub: HubDep, client: CurrentClient,
                    idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    return await _accept_task(request, hub, client, idempotency_key)


@router.put("/Task/{task_id}", status_code=202,
            summary="Same as POST, for EHRs that update a Task in place")
async def put_task(task_id: str, request: Request, hub: HubDep, client: CurrentClient,
                   idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    return await _accept_task(request, hub, client, idempotency_key)
