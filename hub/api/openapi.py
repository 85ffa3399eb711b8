"""The OpenAPI document says what the API answers: its errors, with their media types and schemas.

FastAPI documents only the success of each route (and a 422 in a shape the hub never sends).
This post-processes the generated document once, from the same body table the middleware
enforces, so generated clients and schema-driven test tools know every answer they can get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from hub.api.body_rules import BodyRule, rule_for
from hub.api.problems import FHIR_JSON, PROBLEM

PROBLEM_REF = "#/components/schemas/Problem"
OUTCOME_REF = "#/components/schemas/OperationOutcome"
OAUTH_REF = "#/components/schemas/OAuthError"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
WRITES = {"post", "put", "patch"}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem", "type": "object",
        "description": "RFC 9457 problem details; `errors` lists every problem found",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemError"}},
        },
    },
    "ProblemError": {
        "title": "ProblemError", "type": "object", "required": ["path", "message"],
        "properties": {
            "path": {"type": "string", "description": "JSON path, or header:/query: name"},
            "message": {"type": "string"},
        },
    },
    "OperationOutcome": {
        "title": "OperationOutcome", "type": "object", "description": "FHIR R4 OperationOutcome",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string",
                                 "enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                }}},
        },
    },
    "OAuthError": {
        "title": "OAuthError", "type": "object", "description": "RFC 6749 §5.2 error response",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
}

DESCRIPTIONS = {
    401: "No valid bearer token",
    403: "This client may not do this",
    404: "Something the request names does not exist at this site",
    409: "Conflicts with what the hub holds",
    413: "The body is over this endpoint's limit (refused before it is read)",
    415: "The body's media type is not one this endpoint reads; the answer names those it does",
    422: "The request has problems, each named with its path",
    503: "A service the hub depends on is unavailable; nothing was accepted, retry later",
}

# The token endpoint answers in RFC 6749's own error format, not as problem details.
OAUTH_ERRORS = {400: "Unsupported grant type or scope", 401: "Unknown client or wrong secret"}


def install(app: FastAPI, rules: Sequence[BodyRule]) -> None:
    """Make `app.openapi()` return the generated document with the error answers added."""
    generate = app.openapi

    def documented() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors(generate(), rules)
        return app.openapi_schema

    app.openapi = documented  # type: ignore[method-assign]


def describe_errors(doc: dict[str, Any], rules: Sequence[BodyRule]) -> dict[str, Any]:
    """Add every error answer that can apply to each operation of `doc` (changed in place)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(SCHEMAS)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                _describe(path, method, operation, rule_for(rules, method, path))
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, now unused
        if f"#/components/schemas/{name}" not in str(doc.get("paths")):
            schemas.pop(name, None)
    return doc


def _statuses(method: str, operation: dict[str, Any], rule: BodyRule | None) -> set[int]:
    statuses: set[int] = set()
    authenticated = bool(operation.get("security"))
    if authenticated:
        statuses |= {401, 403, 404, 503}
    if method in WRITES:
        statuses |= {413, 422}  # every request's body is capped, read or not
        if authenticated:
            # Conflicts come from the consent registry today; declared on every authenticated
            # write so that a new one is never an answer the document does not list.
            statuses.add(409)
    if rule is not None:
        statuses |= {413, 415, 422, 503}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    return statuses


def _describe(path: str, method: str, operation: dict[str, Any], rule: BodyRule | None) -> None:
    fhir = path.startswith("/fhir/")
    media, ref = (FHIR_JSON, OUTCOME_REF) if fhir else (PROBLEM, PROBLEM_REF)
    responses = operation.setdefault("responses", {})
    if fhir:  # FHIR endpoints answer application/fhir+json, success included
        for answer in responses.values():
            content = answer.get("content", {})
            if "application/json" in content:
                content[FHIR_JSON] = content.pop("application/json")
    for status in sorted(_statuses(method, operation, rule)):
        responses[str(status)] = {"description": DESCRIPTIONS[status],
                                  "content": {media: {"schema": {"$ref": ref}}}}
    if path == "/oauth/token":
        for status, description in OAUTH_ERRORS.items():
            responses[str(status)] = {"description": description, "content": {
                "application/json": {"schema": {"$ref": OAUTH_REF}}}}
    if rule is not None and "requestBody" not in operation:
        # Routes that read the raw body (JSON or XML) have no body model for FastAPI to show.
        operation["requestBody"] = {"required": True, "content": {
            accepted: {"schema": {"type": "object"} if accepted.endswith("json")
                       else {"type": "string"}}
            for accepted in rule.accepts}}
