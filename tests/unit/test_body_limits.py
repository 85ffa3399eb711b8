"""The body-limits middleware on its own: what the app behind it is handed, and what is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from hub.api.body_rules import BodyRule, body_rules, rule_for
from hub.api.limits import BodyLimits, Refused
from hub.settings import Settings

RULES = [BodyRule(frozenset({"POST"}), "/things/{id}", 10, ("application/json",))]


class App:
    """Reads the whole body, then answers 200; records every message it received."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "http.disconnect":
                raise OSError("client went away")  # as Starlette's ClientDisconnect would
            if not message.get("more_body"):
                break
        await PlainTextResponse("ok")(scope, receive, send)


def _refuse(request: Request, why: Refused) -> Response:
    return PlainTextResponse(why.detail, status_code=why.status)


def _run(headers: dict[str, str], pieces: Iterable[bytes],
         path: str = "/things/1") -> tuple[App, list[Message]]:
    app, sent = App(), []
    queue = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
    queue.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> Message:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [
        (k.lower().encode(), v.encode()) for k, v in headers.items()]}
    # a thread of its own: the browser tests' sync Playwright leaves a loop marked running
    # in the main thread, where asyncio.run() would refuse to start
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, BodyLimits(app, RULES, 5, _refuse)(scope, receive, send)
                    ).result()
    return app, sent


def _status(sent: list[Message]) -> int:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


def test_declared_length_over_the_limit_never_reaches_the_app() -> None:
    """Content-Length over the limit: 413 and the app is not even called."""
    app, sent = _run({"content-type": "application/json", "content-length": "11"}, [b"x" * 11])
    assert _status(sent) == 413 and app.received == []
    assert dict(sent[0]["headers"])[b"connection"] == b"close"


def test_chunked_body_is_cut_with_a_disconnect_never_a_truncated_body() -> None:
    """Past the limit the app is told the client left; only the 413 goes out."""
    app, sent = _run({"content-type": "application/json", "transfer-encoding": "chunked"},
                     [b"x" * 6, b"x" * 6, b"x" * 6])
    assert _status(sent) == 413
    assert [m["type"] for m in app.received] == ["http.request", "http.disconnect"]
    assert all(m.get("more_body", True) for m in app.received)  # never handed a final piece


def test_body_at_the_limit_is_passed_through() -> None:
    """Exactly the limit is allowed, in pieces."""
    app, sent = _run({"content-type": "application/json; charset=utf-8",
                      "transfer-encoding": "chunked"}, [b"x" * 5, b"x" * 5])
    assert _status(sent) == 200 and len(app.received) == 3


def test_media_type_is_checked_without_regard_to_case_or_parameters() -> None:
    """`Application/JSON; charset=utf-8` is JSON; text/plain and a missing type are 415."""
    assert _status(_run({"content-type": "Application/JSON; charset=utf-8",
                         "content-length": "2"}, [b"{}"])[1]) == 200
    for headers in ({"content-type": "text/plain", "content-length": "2"},
                    {"content-length": "2"}, {"transfer-encoding": "chunked"}):
        app, sent = _run(headers, [b"{}"])
        assert _status(sent) == 415 and app.received == []
        assert b"application/json" in sent[1]["body"]


def test_empty_post_without_a_type_is_left_to_the_route() -> None:
    """No body and no Content-Type is not a media type problem."""
    assert _status(_run({"content-length": "0"}, [])[1]) == 200


def test_paths_without_a_rule_are_capped_at_the_default() -> None:
    """A request to an endpoint that reads no body is still capped (here at 5 bytes)."""
    app, sent = _run({"content-length": "6"}, [b"x" * 6], path="/elsewhere")
    assert _status(sent) == 413 and app.received == []
    assert _status(_run({"content-length": "5"}, [b"x" * 5], path="/elsewhere")[1]) == 200


def test_every_body_reading_route_has_a_rule_from_settings() -> None:
    """The table follows the settings, and matches route templates and concrete paths alike."""
    settings = Settings(max_body_consent_bytes=300_000)
    rules = body_rules(settings)
    revoke = rule_for(rules, "POST", "/fhir/Consent/abc/$revoke")
    assert revoke is not None and revoke.limit == 300_000
    assert rule_for(rules, "POST", "/fhir/Consent/{consent_id}/$revoke") == revoke
    assert rule_for(rules, "GET", "/fhir/Consent/abc") is None
    notices = rule_for(rules, "POST", "/v1/agencies/sfpd/diversion-notices")
    assert notices is not None and "text/xml" in notices.accepts
    holds = rule_for(rules, "POST", "/v1/agencies/da/charge-holds")
    assert holds is not None and holds.accepts == ("application/json",)
