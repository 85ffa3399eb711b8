"""POST /oauth/token: the client credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.api.deps import HubDep
from hub.errors import Forbidden, Unauthenticated

router = APIRouter()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="lead-hub"'
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers=headers)


@router.post("/oauth/token", tags=["auth"])
async def token(
    request: Request,
    hub: HubDep,
    grant_type: Annotated[str, Form()],
    scope: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return _oauth_error(401, "invalid_client", "malformed Basic credentials")
    if not client_id or not client_secret:
        return _oauth_error(401, "invalid_client", "send client credentials (Basic or form)")
    try:
        issued = await run_in_threadpool(hub.clients.issue_token, client_id, client_secret, scope)
    except Unauthenticated:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    except Forbidden:
        return _oauth_error(400, "invalid_scope", "a requested scope is not granted to this client")
    return JSONResponse(issued, headers={"Cache-Control": "no-store"})
