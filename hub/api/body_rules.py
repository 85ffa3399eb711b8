"""What each endpoint may be sent: its body limit and the media types it reads.

One table, keyed by method and route path, read by the body-limits middleware
(`hub/api/limits.py`) before a body is read and by the OpenAPI document (`hub/api/openapi.py`),
so what the hub refuses and what it says it refuses cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.routing import compile_path

from hub.api.submissions import XML_TYPES
from hub.settings import Settings

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FHIR_JSON_TYPES = ("application/fhir+json", JSON)
FHIR_TYPES = (*FHIR_JSON_TYPES, "application/fhir+xml", "application/xml")


@dataclass(frozen=True)
class BodyRule:
    """The body one endpoint takes: at most `limit` bytes, of one of the `accepts` media types."""

    methods: frozenset[str]
    path: str  # a route path template, as in the routes: /fhir/Consent/{consent_id}
    limit: int
    accepts: tuple[str, ...]
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_path(self.path)[0])

    def matches(self, method: str, path: str) -> bool:
        return method.upper() in self.methods and self.regex.match(path) is not None


def _rule(method: str, path: str, limit: int, accepts: Sequence[str]) -> BodyRule:
    return BodyRule(frozenset({method}), path, limit, tuple(accepts))


def body_rules(settings: Settings) -> list[BodyRule]:
    """Every endpoint that reads a body. A request matching none is capped at the form limit."""
    submission, fhir = settings.max_body_submission_bytes, settings.max_body_fhir_bytes
    consent, form = settings.max_body_consent_bytes, settings.max_body_form_bytes
    agency = "/v1/agencies/{agency}"
    return [
        _rule("POST", f"{agency}/diversion-notices", submission, (JSON, *sorted(XML_TYPES))),
        _rule("POST", f"{agency}/charge-holds", submission, (JSON,)),
        _rule("POST", f"{agency}/referral-status", submission, (JSON,)),
        _rule("POST", "/fhir/Task", fhir, FHIR_TYPES),
        _rule("PUT", "/fhir/Task/{task_id}", fhir, FHIR_TYPES),
        _rule("POST", "/fhir/Consent", consent, FHIR_TYPES),
        _rule("PUT", "/fhir/Consent/{consent_id}", consent, FHIR_TYPES),
        # $revoke reads a Parameters resource, which the hub reads in JSON only
        _rule("POST", "/fhir/Consent/{consent_id}/$revoke", consent, FHIR_JSON_TYPES),
        _rule("POST", "/v1/court-orders", consent, (JSON,)),
        _rule("POST", "/oauth/token", form, (FORM,)),
        _rule("POST", "/console/{page:path}", form, (FORM,)),
    ]


def rule_for(rules: Sequence[BodyRule], method: str, path: str) -> BodyRule | None:
    return next((r for r in rules if r.matches(method, path)), None)
