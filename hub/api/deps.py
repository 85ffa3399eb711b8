"""Request dependencies: the hub and the authenticated client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth import Principal
from hub.bootstrap import Hub
from hub.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(auto_error=False)


def get_hub(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(get_hub)]


def get_principal(
    hub: HubDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthenticated("send 'Authorization: Bearer <token>' from POST /oauth/token")
    principal = hub.clients.verify(creds.credentials)
    if principal.site != hub.site.site:
        raise Forbidden("this token belongs to another site")
    # The site file may have dropped the agency since the token (or its client) was issued;
    # refusing here means no route ever looks up an agency that is not there.
    if principal.agency not in hub.site.agencies:
        raise Forbidden(f"this token's agency {principal.agency!r} is not (or no longer) "
                        f"in site {hub.site.site!r}")
    return principal


CurrentClient = Annotated[Principal, Depends(get_principal)]
