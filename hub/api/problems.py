"""Errors translated at the HTTP boundary into RFC 9457 problem details. No stack trace leaves."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api.limits import Refused
from hub.errors import (
    BadInput,
    ConfigError,
    Conflict,
    Forbidden,
    HubError,
    NotFound,
    Problem,
    TransientError,
    Unauthenticated,
)

PROBLEM = "application/problem+json"
BASE = "https://lead-hub.example/problems/"
log = structlog.get_logger("hub.api")

STATUS: list[tuple[type[HubError], int, str, str]] = [
    (BadInput, 422, "invalid-input", "The request has problems"),
    (Unauthenticated, 401, "unauthenticated", "A valid bearer token is required"),
    (Forbidden, 403, "forbidden", "Not allowed for this client"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflicts with what the hub holds"),
    (TransientError, 503, "unavailable", "The hub cannot take this right now; retry later"),
    (ConfigError, 500, "misconfigured", "The hub is misconfigured"),
]


def problem(status: int, slug: str, title: str, detail: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="lead-hub"'} if status == 401 else None
    return JSONResponse(
        {"type": BASE + slug, "title": title, "status": status, "detail": detail, **extra},
        status_code=status, media_type=PROBLEM, headers=headers,
    )


FHIR_JSON = "application/fhir+json"


def outcome(status: int, issues: list[tuple[str, str, str, str | None]]) -> JSONResponse:
    """A FHIR OperationOutcome; issues are (severity, code, diagnostics, expression)."""
    body = {"resourceType": "OperationOutcome", "issue": [
        {"severity": sev, "code": code, "diagnostics": diag,
         **({"expression": [expr]} if expr else {})}
        for sev, code, diag, expr in issues]}
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _status_of(exc: HubError) -> tuple[int, str, str]:
    for cls, status, slug, title in STATUS:
        if isinstance(exc, cls):
            return status, slug, title
    return 500, "internal", "Internal error"


def fhir_error(exc: HubError) -> JSONResponse:
    """The FHIR endpoints' form of an error."""
    status = _status_of(exc)[0]
    if isinstance(exc, BadInput):
        return outcome(status, [("error", "invalid", f"{exc.title}: {p.message}", p.path)
                                for p in exc.problems])
    code = {401: "login", 403: "forbidden", 404: "not-found", 503: "transient"}.get(
        status, "exception")
    return outcome(status, [("error", code, str(exc), None)])


def refused(request: Request, why: Refused) -> JSONResponse:
    """A body refused before it was read (hub/api/limits.py): 413 or 415."""
    if why.status == 413:
        slug, title, where = "too-large", "The request body is too large", "$"
    else:
        slug, where = "unsupported-media-type", "header:Content-Type"
        title = "The request body's media type is not accepted here"
    if request.url.path.startswith("/fhir/"):
        code = "too-long" if why.status == 413 else "not-supported"
        return outcome(why.status, [("error", code, why.detail, None)])
    return problem(why.status, slug, title, why.detail,
                   errors=[{"path": where, "message": why.detail}])


def install(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> JSONResponse:
        status, slug, title = _status_of(exc)
        if request.url.path.startswith("/fhir/"):
            return fhir_error(exc)
        log.info("request refused", http_status=status, path=request.url.path,
                 error_kind=type(exc).__name__)
        if isinstance(exc, BadInput):
            return problem(status, slug, title, exc.title,
                           errors=[{"path": p.path, "message": p.message} for p in exc.problems])
        if isinstance(exc, TransientError):
            return problem(status, slug, title, "a service the hub depends on is unavailable; "
                           "nothing was accepted, send the same request again")
        return problem(status, slug, title, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        if request.url.path.startswith("/fhir/"):  # a FHIR client reads OperationOutcome only
            return fhir_error(BadInput("The request has problems",
                                       [Problem(e["path"], e["message"]) for e in errors]))
        return problem(422, "invalid-input", "The request has problems",
                       f"{len(errors)} problem(s) in the request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_type=type(exc).__name__, path=request.url.path)
        return problem(500, "internal", "Internal error",
                       "the hub failed unexpectedly; nothing was accepted, retry later")
