"""Request bodies are capped and typed before the app reads them: a pure ASGI middleware.

An oversized body declared by `Content-Length` is refused (413) before a byte of it is read;
a chunked body is counted as it arrives and reading stops at the limit. A body whose media type
its endpoint does not read is refused (415) naming the types it does. Limits and types come
from one table (`hub/api/body_rules.py`), so routes never check either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.body_rules import BodyRule, rule_for

log = structlog.get_logger("hub.api")


@dataclass(frozen=True)
class Refused:
    """Why a request was refused before its body was read; rendered by whoever owns the path."""

    status: int  # 413 or 415
    limit: int
    accepts: tuple[str, ...]
    sent_type: str | None  # the media type sent, None when there was no Content-Type

    @property
    def detail(self) -> str:
        if self.status == 413:
            return f"this endpoint takes a body of at most {self.limit} bytes"
        sent = f"Content-Type {self.sent_type}" if self.sent_type else "a body without Content-Type"
        return f"{sent} is not accepted here; send one of: {', '.join(self.accepts)}"


Refuse = Callable[[Request, Refused], Response]


def media_type(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`: parameters do not matter here."""
    return content_type.split(";", 1)[0].strip().lower()


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop a request body, up to `limit` bytes."""
    taken = 0
    while taken <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        taken += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimits:
    """Caps and types request bodies per `BodyRule`; everything else is capped at `default_limit`."""

    def __init__(self, app: ASGIApp, rules: Sequence[BodyRule], default_limit: int,
                 refuse: Refuse) -> None:
        self.app, self.rules, self.default_limit, self.refuse = app, rules, default_limit, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = rule_for(self.rules, scope["method"], scope["path"])
        refused = self._check_headers(Headers(scope=scope), rule)
        if refused is not None:
            await self._answer(scope, receive, send, refused)
            return
        await self._counted(scope, receive, send, rule.limit if rule else self.default_limit)

    def _check_headers(self, headers: Headers, rule: BodyRule | None) -> Refused | None:
        limit = rule.limit if rule else self.default_limit
        accepts = rule.accepts if rule else ()
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return Refused(413, limit, accepts, None)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        has_body = chunked or (length is not None and length.strip("0") != "")
        content_type = headers.get("content-type")
        if rule is None or not (has_body or content_type is not None):
            return None
        if content_type is None or media_type(content_type) not in rule.accepts:
            return Refused(415, limit, accepts, media_type(content_type) if content_type else None)
        return None

    async def _answer(self, scope: Scope, receive: Receive, send: Send, refused: Refused) -> None:
        log.info("request refused", http_status=refused.status, path=scope["path"],
                 error_kind="body-too-large" if refused.status == 413 else "unsupported-media-type")
        if refused.status == 415:
            # A body of an unread type is still within the limit: take it in (and drop it) so
            # the client, still sending, reads the answer instead of a reset connection.
            await _drain(receive, refused.limit)
        response = self.refuse(Request(scope), refused)
        # A 413's body stays unread: the connection cannot carry another request after it.
        response.headers["Connection"] = "close"
        if refused.status == 415 and scope["method"] == "POST":
            response.headers["Accept-Post"] = ", ".join(refused.accepts)
        await response(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        started = False  # the app has begun its answer: a 413 can no longer be sent
        cut = False  # the body went over the limit and the app was told the client left

        async def counting_receive() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    if not started:
                        await self._answer(scope, receive, send,
                                           Refused(413, limit, (), None))
                    # A disconnect, never a truncated body: the app must not act on part of it.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut and not started:
                return  # the 413 is the answer; the app's reply to a cut-off body is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # The app failing on the disconnect it was handed is expected; the 413 was sent.
            if not cut:
                raise
