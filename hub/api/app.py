"""The FastAPI application: thin routes over the hub."""

from __future__ import annotations

from fastapi import FastAPI

from hub.api import audit, consents, fhir, inbox, problems, submissions, token
from hub.bootstrap import Hub
from hub.console import routes as console


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="LEAD Hub", version="0.1.0",
                  description="Consent-gated data exchange for Law Enforcement Assisted Diversion")
    app.state.hub = hub
    problems.install(app)
    app.include_router(token.router)
    app.include_router(submissions.router)
    app.include_router(inbox.router)
    app.include_router(fhir.router)
    app.include_router(consents.router)
    app.include_router(audit.router)
    app.include_router(console.router)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok", "site": hub.site.site}

    return app
