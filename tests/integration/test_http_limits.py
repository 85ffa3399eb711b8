"""Bodies are capped before they are read, media types are checked, and the API document says so."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from openapi_spec_validator import validate
from sqlmodel import select

from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.tables import Message
from tests.harness import RunningHub, notice
from tests.raw_http import chunked, exchange

# The limits live in the HTTP layer, in front of any store: one store is enough.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NOTICES = "/v1/agencies/sfpd/diversion-notices"
MB = 1_000_000
NOTICE_TYPES = "application/json, application/niem+xml, application/xml, text/xml"
FHIR_TYPES = "application/fhir+json, application/json, application/fhir+xml, application/xml"


def _stored_messages(hub: Hub) -> int:
    with unit_of_work(hub.engine) as s:
        return len(s.exec(select(Message)).all())


def _auth(running: RunningHub, agency: str, scopes: set[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(agency, scopes)}"}


def _pieces(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """`total` bytes of a JSON document that never ends, `size` at a time."""
    yield b'{"referral_reason": "'
    for _ in range(total // size):
        yield b"x" * size


def test_declared_oversize_notice_is_refused_before_the_body_is_sent(
        running: RunningHub) -> None:
    """Content-Length: 50 MB and a few bytes sent: the 413 comes at once, nothing waits for more."""
    answer = exchange(str(running.http.base_url), "POST", NOTICES, {
        **_auth(running, "sfpd"), "Content-Type": "application/json",
        "Content-Length": str(50 * MB)}, [b'{"person": '], timeout=5)
    assert answer.status == 413 and answer.seconds < 3
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["connection"] == "close"
    problem = answer.json()
    assert isinstance(problem, dict) and problem["status"] == 413
    assert problem["type"].endswith("/too-large") and str(MB) in problem["detail"]
    assert problem["errors"] == [{"path": "$", "message": problem["detail"]}]
    assert _stored_messages(running.hub) == 0


def test_two_megabyte_notice_with_content_length_is_refused_unread(running: RunningHub) -> None:
    """A 2 MB notice with its length declared is answered 413 while it is still being sent."""
    answer = exchange(str(running.http.base_url), "POST", NOTICES, {
        **_auth(running, "sfpd"), "Content-Type": "application/json",
        "Content-Length": str(2 * MB)}, _pieces(2 * MB))
    assert answer.status == 413
    assert _stored_messages(running.hub) == 0


def test_chunked_two_megabyte_notice_is_cut_at_the_limit(running: RunningHub) -> None:
    """Without Content-Length the body is counted as it arrives; reading stops past 1 MB."""
    answer = exchange(str(running.http.base_url), "POST", NOTICES, {
        **_auth(running, "sfpd"), "Content-Type": "application/json",
        "Transfer-Encoding": "chunked"}, chunked(_pieces(2 * MB)))
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert _stored_messages(running.hub) == 0


def test_chunked_notice_within_the_limit_is_accepted(running: RunningHub) -> None:
    """Counting a chunked body does not get in the way of one under the limit."""
    raw = orjson.dumps(notice())
    r = running.http.post(NOTICES, content=iter([raw[:100], raw[100:]]), headers={
        **_auth(running, "sfpd"), "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(("method", "path", "content_type", "limit", "fhir"), [
    ("POST", "/fhir/Task", "application/fhir+json", "max_body_fhir_bytes", True),
    ("PUT", "/fhir/Task/t1", "application/fhir+xml", "max_body_fhir_bytes", True),
    ("POST", "/fhir/Consent", "application/fhir+json", "max_body_consent_bytes", True),
    ("PUT", "/fhir/Consent/c1", "application/json", "max_body_consent_bytes", True),
    ("POST", "/fhir/Consent/c1/$revoke", "application/fhir+json", "max_body_consent_bytes", True),
    ("POST", "/v1/court-orders", "application/json", "max_body_consent_bytes", False),
    ("POST", "/v1/agencies/da/charge-holds", "application/json", "max_body_submission_bytes",
     False),
    ("POST", "/oauth/token", "application/x-www-form-urlencoded", "max_body_form_bytes", False),
    ("POST", "/v1/agencies/sfpd/inbox/i1/ack", "application/json", "max_body_form_bytes", False),
])
def test_every_endpoint_refuses_a_body_over_its_limit(
        running: RunningHub, method: str, path: str, content_type: str, limit: str,
        fhir: bool) -> None:
    """One byte over the endpoint's limit is 413: OperationOutcome on /fhir, problem elsewhere."""
    cap = getattr(running.hub.settings, limit)
    answer = exchange(str(running.http.base_url), method, path, {
        "Content-Type": content_type, "Content-Length": str(cap + 1)}, [b"{}"], timeout=5)
    assert answer.status == 413, answer.body
    body = answer.json()
    assert isinstance(body, dict)
    if fhir:
        assert answer.headers["content-type"] == "application/fhir+json"
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "too-long" and str(cap) in body["issue"][0]["diagnostics"]
    else:
        assert answer.headers["content-type"] == "application/problem+json"
        assert body["status"] == 413 and str(cap) in body["detail"]


def test_a_body_at_the_limit_is_read(running: RunningHub) -> None:
    """The limit is inclusive: a consent of exactly the limit reaches the registry (and its 422)."""
    cap = running.hub.settings.max_body_consent_bytes
    body = b'{"resourceType": "Consent"}'
    r = running.http.post("/fhir/Consent", content=body + b" " * (cap - len(body)), headers={
        **_auth(running, "provider", {"consent.write"}), "Content-Type": "application/fhir+json"})
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_json_notice_of_another_media_type_is_415_naming_the_accepted(
        running: RunningHub, content_type: str | None) -> None:
    """JSON sent as text/plain, octet-stream or with no Content-Type is refused, unread."""
    headers = _auth(running, "sfpd")
    if content_type:
        headers["Content-Type"] = content_type
    r = running.http.post(NOTICES, content=orjson.dumps(notice()), headers=headers)
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    assert NOTICE_TYPES in r.json()["detail"]
    assert r.json()["errors"][0]["path"] == "header:Content-Type"
    assert r.headers["accept-post"] == NOTICE_TYPES
    assert _stored_messages(running.hub) == 0


@pytest.mark.parametrize(("path", "content_type", "accepted"), [
    ("/v1/agencies/da/charge-holds", "application/xml", "send one of: application/json"),
    ("/v1/court-orders", "text/plain", "send one of: application/json"),
    ("/oauth/token", "application/json", "application/x-www-form-urlencoded"),
    ("/fhir/Task", "text/plain", FHIR_TYPES),
    ("/fhir/Consent", "application/octet-stream", FHIR_TYPES),
])
def test_each_endpoint_names_the_media_types_it_reads(
        running: RunningHub, path: str, content_type: str, accepted: str) -> None:
    """A body of a type the endpoint does not read is 415, in the endpoint's own error format."""
    r = running.http.post(path, content=b"{}", headers={"Content-Type": content_type})
    assert r.status_code == 415
    if path.startswith("/fhir/"):
        assert r.headers["content-type"] == "application/fhir+json"
        issue = r.json()["issue"][0]
        assert issue["code"] == "not-supported" and accepted in issue["diagnostics"]
    else:
        assert accepted in r.json()["detail"]


def test_console_refusals_are_pages(running: RunningHub) -> None:
    """The console answers an oversized or non-form POST with its own HTML page, not JSON."""
    r = running.http.post("/console/login", content=b"{}",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and r.headers["content-type"].startswith("text/html")
    assert "application/x-www-form-urlencoded" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    cap = running.hub.settings.max_body_form_bytes
    answer = exchange(str(running.http.base_url), "POST", "/console/login", {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(cap + 1)}, [b"username="], timeout=5)
    assert answer.status == 413 and answer.headers["content-type"].startswith("text/html")


def test_openapi_document_declares_every_error_answer(running: RunningHub) -> None:
    """413/415/422 and the auth errors are declared with their schemas; the document is valid."""
    doc = running.http.get("/openapi.json").json()
    validate(doc)
    schemas = doc["components"]["schemas"]
    assert set(schemas["Problem"]["properties"]) == {"type", "title", "status", "detail", "errors"}
    assert set(schemas["ProblemError"]["required"]) == {"path", "message"}
    assert "HTTPValidationError" not in schemas
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            media, ref = (("application/fhir+json", "OperationOutcome") if path.startswith("/fhir/")
                          else ("application/problem+json", "Problem"))
            if op.get("security"):
                assert {"401", "403", "404"} <= codes, (method, path)
            if method in ("post", "put"):
                assert {"413", "422"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"413", "415", "422"} <= codes, (method, path)
            for code in codes & {"401", "403", "404", "409", "413", "415", "422"}:
                if path == "/oauth/token" and code == "401":
                    continue  # RFC 6749's own error format
                content = op["responses"][code]["content"]
                assert content == {media: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
    notices = doc["paths"]["/v1/agencies/{agency}/diversion-notices"]["post"]
    assert set(notices["requestBody"]["content"]) == set(NOTICE_TYPES.split(", "))


def test_openapi_answers_match_what_the_hub_sends(running: RunningHub) -> None:
    """A 422 on a FHIR path is an OperationOutcome, as the document says, not problem+json."""
    r = running.http.get("/fhir/Consent/c1/_history/not-a-number",
                         headers=_auth(running, "provider", {"consent.write"}))
    assert r.status_code == 422 and r.headers["content-type"] == "application/fhir+json"
    assert r.json()["resourceType"] == "OperationOutcome"
