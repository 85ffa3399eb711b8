"""The FastAPI application: thin routes over the hub."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hub.api import audit, consents, fhir, inbox, openapi, problems, submissions, token
from hub.api.body_rules import body_rules
from hub.api.limits import BodyLimits, Refused
from hub.bootstrap import Hub
from hub.console import routes as console
from hub.console import web as console_web


def _refuse(request: Request, why: Refused) -> Response:
    """A body refused before it was read, in the form its caller reads: console page or API error."""
    if request.url.path.startswith(console_web.PREFIX + "/"):
        return console_web.refusal_page(request, why.status, why.detail)
    return problems.refused(request, why)


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="LEAD Hub", version="0.1.0",
                  description="Consent-gated data exchange for Law Enforcement Assisted Diversion")
    app.state.hub = hub
    problems.install(app)
    rules = body_rules(hub.settings)
    app.add_middleware(BodyLimits, rules=rules, default_limit=hub.settings.max_body_form_bytes,
                       refuse=_refuse)
    app.include_router(token.router)
    app.include_router(submissions.router)
    app.include_router(inbox.router)
    app.include_router(fhir.router)
    app.include_router(consents.router)
    app.include_router(audit.router)
    app.include_router(console.router)
    openapi.install(app, rules)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok", "site": hub.site.site}

    return app
